use cacheback::cacheback;

#[cacheback]
async fn generic<T: serde::Serialize>(q: T) -> String {
    let _ = q;
    String::new()
}

fn main() {}
