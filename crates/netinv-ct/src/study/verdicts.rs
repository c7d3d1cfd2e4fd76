//! The verdicts of thesis chapter 5 (and of netinv's generative prior, issue 17) from the
//! committed results of `ct_study` (per-digit PSNR, `per_image_psnr.csv`) and `ct_ablation`
//! (its summary: three classifier seeds, every arm tuned on its own).
//!
//! PSNR is against the true digit, so no judge takes part (`n/a`).

use netinv_metrics::stats::{mean_ci95_normal, MeanCi};
use netinv_metrics::verdict::{Case, Verdict, VerdictRow};

use super::ablation::SeedSummary;
use super::{noise_name, parse_noise, Arm, ArmLabels, Method};
use crate::error::invalid;
use crate::Result;

/// One line of `per_image_psnr.csv`: an arm (index in [`super::ARMS`]), a digit, a setting
/// and the PSNR of that arm's reconstruction in dB.
#[derive(Debug, Clone, PartialEq)]
pub struct PsnrRecord {
    /// The arm's index in [`super::ARMS`].
    pub arm: usize,
    /// The test digit's index.
    pub image: usize,
    /// Projection angles.
    pub n_angles: usize,
    /// Photons per ray (`None`: noiseless).
    pub noise_i0: Option<f64>,
    /// PSNR in dB.
    pub psnr: f64,
}

/// Parses `per_image_psnr.csv` (header `arm,image,n_angles,noise_i0,psnr`).
///
/// # Errors
/// [`crate::Error::InvalidConfig`] (field `per_image_psnr`) for another header or a line
/// that does not parse.
pub fn parse_psnr_csv(text: &str) -> Result<Vec<PsnrRecord>> {
    let mut lines = text.lines();
    if lines.next() != Some("arm,image,n_angles,noise_i0,psnr") {
        return Err(invalid(
            "per_image_psnr",
            "the header must be arm,image,n_angles,noise_i0,psnr",
        ));
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            parse_record(line)
                .map_err(|e| invalid("per_image_psnr", format!("line {}: {e}", i + 2)))
        })
        .collect()
}

fn parse_record(line: &str) -> std::result::Result<PsnrRecord, String> {
    let fields: Vec<&str> = line.split(',').collect();
    let [arm, image, n_angles, noise, psnr] = fields[..] else {
        return Err(format!("{} fields, want 5", fields.len()));
    };
    let int = |s: &str| s.parse::<usize>().map_err(|e| format!("{s:?}: {e}"));
    Ok(PsnrRecord {
        arm: int(arm)?,
        image: int(image)?,
        n_angles: int(n_angles)?,
        noise_i0: parse_noise(noise).map_err(|e| e.to_string())?,
        psnr: psnr.parse().map_err(|e| format!("{psnr:?}: {e}"))?,
    })
}

/// The paired PSNR difference `a - b` per digit at one setting, mean and normal 95% CI
/// (`1.96 s / sqrt n`, as `tools/ct/pivot_results.py paired` prints it); `None` when the
/// arms share no digit there.
pub fn paired_psnr(
    records: &[PsnrRecord],
    a: Arm,
    b: Arm,
    n_angles: usize,
    noise_i0: Option<f64>,
) -> Option<MeanCi> {
    let at = |arm: Arm| {
        let index = arm.index();
        records
            .iter()
            .filter(move |r| r.arm == index && r.n_angles == n_angles && r.noise_i0 == noise_i0)
    };
    let d: Vec<f64> = at(a)
        .filter_map(|ra| {
            at(b)
                .find(|rb| rb.image == ra.image)
                .map(|rb| ra.psnr - rb.psnr)
        })
        .collect();
    (!d.is_empty()).then(|| mean_ci95_normal(&d))
}

/// The settings of the records: angle counts ascending, noise levels in order of first
/// appearance.
fn settings(records: &[PsnrRecord]) -> (Vec<usize>, Vec<Option<f64>>) {
    let mut angles: Vec<usize> = records.iter().map(|r| r.n_angles).collect();
    angles.sort_unstable();
    angles.dedup();
    let mut noises = Vec::new();
    for r in records {
        if !noises.contains(&r.noise_i0) {
            noises.push(r.noise_i0);
        }
    }
    (angles, noises)
}

/// The angle counts the thesis calls "very angle-constrained" (where the hybrid should win):
/// up to 4; from 6 on, plain SIRT should be better.
const FEW_ANGLES: usize = 4;

const SIRT100: Arm = Arm::new(Method::Sirt100, ArmLabels::None);
const HYBRID: Arm = Arm::new(Method::SirtInv, ArmLabels::Predicted);
const TV: Arm = Arm::new(Method::TvPdhg, ArmLabels::None);
const CVAE_DC: Arm = Arm::new(Method::CvaeDc, ArmLabels::Predicted);

/// The rows of the verdict table for chapter 5 and issue 17.
///
/// # Errors
/// [`crate::Error::InvalidConfig`] when the records or the summary lack a setting a verdict
/// needs.
pub fn verdicts(records: &[PsnrRecord], ablation: &[SeedSummary]) -> Result<Vec<VerdictRow>> {
    Ok(vec![
        hybrid_verdict(records, ablation)?,
        regularisation_verdict(ablation)?,
        class_term_verdict(ablation)?,
        generative_verdict(records)?,
    ])
}

/// `min..max` of the means, signed, two decimals.
fn range_text(means: &[f64]) -> String {
    let lo = means.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = means.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:+.2} to {hi:+.2} dB")
}

/// The summaries named `name` in the ablation, every setting.
fn ablation_rows<'a>(ablation: &'a [SeedSummary], name: &str) -> Result<Vec<&'a SeedSummary>> {
    let rows: Vec<&SeedSummary> = ablation.iter().filter(|s| s.name == name).collect();
    if rows.is_empty() {
        return Err(invalid("ablation", format!("no {name} rows")));
    }
    Ok(rows)
}

fn setting_text(s: &SeedSummary) -> String {
    format!("{} angles, {}", s.n_angles, noise_name(s.noise_i0))
}

fn boot_text(s: &SeedSummary) -> String {
    format!(
        "{:+.2} [{:+.2}, {:+.2}] ({})",
        s.mean,
        s.boot_ci.0,
        s.boot_ci.1,
        setting_text(s)
    )
}

/// Thesis 5.3 / 6 (finding 4): the hybrid beats SIRT-100 at very few angles, SIRT-100 is
/// better with enough angles. Few angles: the ablation's tuned `full - sirt100` (crossed
/// bootstrap CI above 0) at 3 and 4 angles, and ct_study's hybrid at 2 angles (normal CI
/// above 0); many angles: ct_study's hybrid - SIRT-100 (CI below 0).
fn hybrid_verdict(records: &[PsnrRecord], ablation: &[SeedSummary]) -> Result<VerdictRow> {
    let tuned = ablation_rows(ablation, "full - sirt100")?;
    let mut cases: Vec<Case> = tuned
        .iter()
        .map(|s| Case::new(setting_text(s), s.boot_ci.0 > 0.0))
        .collect();
    let (angles, noises) = settings(records);
    let mut below_few = Vec::new();
    let mut many = Vec::new();
    for &n_angles in &angles {
        let covered = tuned.iter().any(|s| s.n_angles == n_angles);
        if covered {
            continue;
        }
        for &noise in &noises {
            let d = paired_psnr(records, HYBRID, SIRT100, n_angles, noise)
                .ok_or_else(|| invalid("per_image_psnr", "no sirt_inv / sirt100 pairs"))?;
            let label = format!("{n_angles} angles, {}", noise_name(noise));
            if n_angles <= FEW_ANGLES {
                cases.push(Case::new(label.clone(), d.low() > 0.0));
                below_few.push(format!("{:+.2} ± {:.2} ({label})", d.mean, d.half_width));
            } else {
                cases.push(Case::new(label, d.high() < 0.0));
                many.push(d);
            }
        }
    }
    let verdict = Verdict::from_cases(&cases).ok_or_else(|| invalid("ablation", "no cases"))?;
    let many_below = many.iter().filter(|d| d.high() < 0.0).count();
    let many_means: Vec<f64> = many.iter().map(|d| d.mean).collect();
    Ok(VerdictRow {
        claim: "alternating SIRT with inversion steps beats SIRT-100 at very few angles; with enough angles plain SIRT is better (thesis 5.3, 6.4)".into(),
        verdict,
        figure: format!(
            "tuned hybrid - SIRT-100 (3 classifier seeds x 200 digits, crossed bootstrap): {}; untuned study hybrid at 2 angles: {}; from 6 angles: {}, CI below 0 in {many_below} of {}",
            tuned.iter().map(|s| boot_text(s)).collect::<Vec<_>>().join(", "),
            below_few.join(", "),
            range_text(&many_means),
            many.len()
        ),
        judges: "n/a".into(),
        study: "ct_ablation".into(),
    })
}

/// Thesis 5.4: the gain is at least partly the regularisation's: the priors-only arm beats
/// SIRT with the same number of SIRT iterations (`priors_only - sirt88`, bootstrap CI
/// above 0).
fn regularisation_verdict(ablation: &[SeedSummary]) -> Result<VerdictRow> {
    let rows = ablation_rows(ablation, "priors_only - sirt88")?;
    let cases: Vec<Case> = rows
        .iter()
        .map(|s| Case::new(setting_text(s), s.boot_ci.0 > 0.0))
        .collect();
    let verdict = Verdict::from_cases(&cases).ok_or_else(|| invalid("ablation", "no cases"))?;
    Ok(VerdictRow {
        claim: "the hybrid's gain is at least partly the regularisation's (TV, L2 and BatchNorm priors without the class term) (thesis 5.4)".into(),
        verdict,
        figure: format!(
            "priors-only - SIRT-88 (same SIRT iterations), crossed bootstrap: {}",
            rows.iter().map(|s| boot_text(s)).collect::<Vec<_>>().join(", ")
        ),
        judges: "n/a".into(),
        study: "ct_ablation".into(),
    })
}

/// The other half of 5.4, which the thesis doubts: the class knowledge adds to the priors
/// (`full - priors_only`, both the crossed bootstrap CI and the t CI over classifier seeds
/// above 0).
fn class_term_verdict(ablation: &[SeedSummary]) -> Result<VerdictRow> {
    let rows = ablation_rows(ablation, "full - priors_only")?;
    let cases: Vec<Case> = rows
        .iter()
        .map(|s| Case::new(setting_text(s), s.boot_ci.0 > 0.0 && s.t_ci.0 > 0.0))
        .collect();
    let verdict = Verdict::from_cases(&cases).ok_or_else(|| invalid("ablation", "no cases"))?;
    let t_text = rows
        .iter()
        .map(|s| format!("[{:+.2}, {:+.2}]", s.t_ci.0, s.t_ci.1))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(VerdictRow {
        claim: "the class knowledge (the inversion's class term) adds to the priors, which the thesis doubts (thesis 5.4)".into(),
        verdict,
        figure: format!(
            "full - priors-only, crossed bootstrap: {}; t over the 3 seed means: {t_text}",
            rows.iter().map(|s| boot_text(s)).collect::<Vec<_>>().join(", ")
        ),
        judges: "n/a".into(),
        study: "ct_ablation".into(),
    })
}

/// netinv's claim (issue 17): the label-free class-conditional generative prior with data
/// consistency beats tuned TV at 2, 3 and 4 angles (CI above 0 at every noise level).
fn generative_verdict(records: &[PsnrRecord]) -> Result<VerdictRow> {
    let (angles, noises) = settings(records);
    let mut cases = Vec::new();
    let mut figures = Vec::new();
    for &n_angles in angles.iter().filter(|&&a| a <= FEW_ANGLES) {
        for &noise in &noises {
            let d = paired_psnr(records, CVAE_DC, TV, n_angles, noise)
                .ok_or_else(|| invalid("per_image_psnr", "no cvae_dc / tv_pdhg pairs"))?;
            let label = format!("{n_angles} angles, {}", noise_name(noise));
            cases.push(Case::new(label.clone(), d.low() > 0.0));
            figures.push(format!("{:+.2} ± {:.2} ({label})", d.mean, d.half_width));
        }
    }
    let verdict = Verdict::from_cases(&cases)
        .ok_or_else(|| invalid("per_image_psnr", "no few-angle settings"))?;
    Ok(VerdictRow {
        claim: "netinv, not the thesis: a label-free class-conditional VAE prior with data consistency beats tuned TV at 2-4 angles (issue 17)".into(),
        verdict,
        figure: format!("cvae_dc (predicted) - tv_pdhg, 200 digits: {}", figures.join(", ")),
        judges: "n/a".into(),
        study: "ct_study".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(lines: &[&str]) -> String {
        format!("arm,image,n_angles,noise_i0,psnr\n{}", lines.join("\n"))
    }

    #[test]
    fn paired_psnr_pairs_by_digit_at_one_setting() {
        let (h, s) = (HYBRID.index(), SIRT100.index());
        let text = csv(&[
            &format!("{h},0,3,none,12.0"),
            &format!("{s},0,3,none,11.0"),
            &format!("{h},1,3,none,14.0"),
            &format!("{s},1,3,none,11.0"),
            &format!("{h},0,3,1e3,40.0"),
        ]);
        let records = parse_psnr_csv(&text).unwrap();
        let d = paired_psnr(&records, HYBRID, SIRT100, 3, None).unwrap();
        // differences 1 and 3: mean 2, sd sqrt 2, half-width 1.96 sqrt(2) / sqrt(2)
        assert!((d.mean - 2.0).abs() < 1e-12);
        assert!((d.half_width - 1.96).abs() < 1e-12);
        assert!(paired_psnr(&records, HYBRID, SIRT100, 3, Some(1e3)).is_none());
    }

    #[test]
    fn bad_csv_is_refused_with_the_line() {
        assert!(parse_psnr_csv("arm,image\n1,2").is_err());
        let err = parse_psnr_csv(&csv(&["1,0,3,none,x"])).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
