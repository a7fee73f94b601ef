// A tiny file for trying `baton edit` (see the README).

fn greet() {
    println!("hello");
}

fn main() {
    greet();
}
