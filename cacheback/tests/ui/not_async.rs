use cacheback::cacheback;

#[cacheback]
fn not_async(q: String) -> String {
    q
}

fn main() {}
