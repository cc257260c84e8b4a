use cacheback::cacheback;

#[cacheback]
async fn by_ref(id: u32, name: &str) -> String {
    format!("{id}{name}")
}

fn main() {}
