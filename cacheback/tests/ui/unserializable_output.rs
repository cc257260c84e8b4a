use cacheback::cacheback;

#[derive(Clone)]
pub struct Rows;

#[cacheback]
async fn rows(q: String) -> Rows {
    let _ = q;
    Rows
}

fn main() {}
