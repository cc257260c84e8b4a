use cacheback::cacheback;

#[derive(Clone)]
pub struct Connection;

#[cacheback]
async fn query(conn: Connection, q: String) -> String {
    let _ = conn;
    q
}

fn main() {}
