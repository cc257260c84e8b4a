use cacheback::cacheback;

// A one-argument `Result` alias hides the error type from the macro.
#[cacheback]
async fn answer(q: String) -> loco_rs::Result<u32> {
    let _ = q;
    Ok(42)
}

fn main() {}
