//! How finely the projectors split their work across threads.

/// Multiply-adds a parallel job should at least do. Below this, handing a job to another
/// thread costs more than it saves: small problems (a 28x28 digit at a few angles, solved
/// for many digits at once on an outer thread pool) then run on the calling thread.
const MIN_JOB_WORK: usize = 1 << 15;

/// The least number of items per parallel job when one item costs `work_per_item`
/// multiply-adds (for rayon's `with_min_len`).
pub(crate) fn min_items(work_per_item: usize) -> usize {
    (MIN_JOB_WORK / work_per_item.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_items_are_grouped_and_large_ones_split() {
        assert_eq!(min_items(0), MIN_JOB_WORK);
        assert_eq!(min_items(1 << 10), 32);
        assert_eq!(min_items(1 << 20), 1);
    }
}
