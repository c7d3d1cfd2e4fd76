//! The judge panel's table of docs/results/judges.md, printed from the judges' reports
//! (`judge.json`).

use std::fmt::Write as _;

use super::JudgeReport;

/// The net of a recipe in words: `conv 16, 32, fc 128` or `784-256-10` for an MLP.
fn net_text(report: &JudgeReport) -> String {
    let m = &report.recipe.model;
    if m.conv_channels.is_empty() {
        let inputs = m.in_channels * m.image_size * m.image_size;
        format!("{inputs}-{}-{}", m.hidden, m.outputs)
    } else {
        let convs: Vec<String> = m.conv_channels.iter().map(|c| c.to_string()).collect();
        let bn = if m.batch_norm { ", BatchNorm" } else { "" };
        format!("conv {}, fc {}{bn}", convs.join(", "), m.hidden)
    }
}

/// `SGD`, `Adam` (how papers write them) from the serialised name.
fn optimizer_label(name: &str) -> String {
    match name {
        "sgd" => "SGD".to_string(),
        "adam" => "Adam".to_string(),
        other => other.to_string(),
    }
}

/// The training of a recipe in words: optimiser, lr, epochs and the adversarial mode with
/// its steps (read from the recipe's JSON so every mode prints).
fn training_text(report: &JudgeReport) -> String {
    let r = &report.recipe;
    let optimizer = serde_json::to_value(r.optimizer)
        .ok()
        .and_then(|v| v.as_str().map(optimizer_label))
        .unwrap_or_default();
    let momentum = if optimizer == "SGD" {
        format!(" mom. {}", r.momentum)
    } else {
        String::new()
    };
    let adversarial = serde_json::to_value(r.adversarial).unwrap_or_default();
    let field = |k: &str| {
        adversarial
            .get(k)
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    let mode = adversarial
        .get("mode")
        .and_then(|v| v.as_str())
        .unwrap_or("none")
        .to_uppercase();
    let attack = if mode == "NONE" {
        "no adversarial training".to_string()
    } else {
        format!(
            "{mode} eps {} {} x {}",
            field("epsilon"),
            field("steps"),
            field("step_size")
        )
    };
    format!(
        "{optimizer} lr {}{momentum}, {} epochs, {attack}",
        r.lr, r.epochs
    )
}

/// The panel table: one row per judge (name, net, training, clean and attack accuracy,
/// noise hits of 10, the gates, accepted, training seconds).
pub fn report_table(reports: &[(String, JudgeReport)]) -> String {
    let mut s = String::from(
        "| judge | net | training | clean | PGD-10 | noise hits | gate (clean / PGD / noise) | accepted | train s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for (name, report) in reports {
        let r = &report.recipe;
        let _ = writeln!(
            s,
            "| {name} | {} | {} | **{:.4}** | **{:.4}** | {} | {:.2} / {:.2} / {} | {} | {:.0} |",
            net_text(report),
            training_text(report),
            report.clean_accuracy,
            report.attack_accuracy,
            report.noise_hits,
            r.min_clean_accuracy,
            r.min_attack_accuracy,
            r.max_noise_hits,
            if report.accepted { "yes" } else { "no" },
            report.train_seconds
        );
    }
    s
}
