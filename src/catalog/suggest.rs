//! "Did you mean …?" for names a catalog author mistyped.

/// The candidate closest to `word` by edit distance (a swap of two
/// neighbours counts once), if it is close enough to be the intended one:
/// at most one edit per four characters, at least one, at most three.
pub(super) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 4).clamp(1, 3);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// Optimal string alignment distance (Damerau–Levenshtein without
/// repeated edits of one substring), over chars.
pub(super) fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let w = b.len() + 1;
    let mut d: Vec<usize> = vec![0; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1)
                    .min(d[(i - 1) * w + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[(i - 2) * w + j - 2] + 1);
                }
                v
            };
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("paramters", "parameters"), 1);
        assert_eq!(distance("paramteers", "parameters"), 1, "one swap");
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("ca", "abc"), 3, "OSA, not full Damerau");
    }

    #[test]
    fn closest_is_close_enough_or_nothing() {
        let names = [
            "parameters.database",
            "parameters.username",
            "secrets.root_password",
        ];
        assert_eq!(
            closest("paramters.database", names),
            Some("parameters.database")
        );
        assert_eq!(
            closest("secrets.rootpassword", names),
            Some("secrets.root_password")
        );
        assert_eq!(closest("instance.namespace", names), None);
        assert_eq!(closest("ab", ["ac", "xy"]), Some("ac"));
        assert_eq!(closest("ab", ["xy"]), None);
        assert_eq!(
            closest("same", ["same"]),
            None,
            "never suggests the word itself"
        );
    }
}
