use cacheback::cacheback;

#[cacheback(name = "", lifetime = 5)]
async fn unnamed(q: String) -> String {
    q
}

fn main() {}
