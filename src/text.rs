//! Text helpers shared by the module.

/// `items` with `sep` between them, as `[S]::join` writes them. One small
/// loop instead of the standard library's `join`, which is generated once
/// per item type at about 1 KB of module each.
pub fn join<S: AsRef<str>>(items: &[S], sep: &str) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(item.as_ref());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn joins_as_the_standard_library_does() {
        let cases: [&[&str]; 4] = [&[], &["a"], &["a", "b"], &["", "x", ""]];
        for items in cases {
            assert_eq!(join(items, ", "), items.join(", "));
            let owned: Vec<String> = items.iter().map(|s| s.to_string()).collect();
            assert_eq!(join(&owned, ";"), owned.join(";"));
        }
    }
}
