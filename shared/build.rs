// `sqlx::migrate!` embeds shared/migrations at compile time; this makes a new migration
// file rebuild the crate (sqlx's documented recipe).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
