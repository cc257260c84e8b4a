use cacheback::cacheback;

#[cacheback(lifetim = 5)]
async fn typo(q: String) -> String {
    q
}

fn main() {}
