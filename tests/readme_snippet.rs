//! The README's "Using netinv from another project" program is the `main.rs` of the crate
//! outside the workspace that CI builds and runs (`tests/downstream/`): this test keeps the
//! two identical, so the snippet a user copies is the one that was built.

#[test]
fn readme_snippet_is_the_downstream_main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let main_rs = std::fs::read_to_string(format!("{root}/tests/downstream/src/main.rs")).unwrap();
    let section = readme
        .split("## Using netinv from another project")
        .nth(1)
        .expect("README has the section");
    let snippet = section
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section has a rust block");
    assert_eq!(snippet, main_rs);
}
