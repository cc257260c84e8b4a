use cacheback::cacheback;

struct Repo;

impl Repo {
    #[cacheback]
    async fn load(&self, q: String) -> String {
        q
    }
}

fn main() {}
