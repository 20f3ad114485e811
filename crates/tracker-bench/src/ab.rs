//! `tracker-bench ab`: two server binaries alternated in one run, each tracking next to its own
//! no-op baseline (`/bench/noop`, the same HTTP stack with no tracking work). The machine's
//! noise moves both alike; the ratio of each to its own baseline, and the two ratios' medians,
//! are what a change is judged by.

use std::path::Path;

use crate::{load::Target, measure, Common};

/// Tracking's and the no-op's requests/s of one binary in one round, and where tracking's
/// time went: the server's CPU per request, and its store writer thread's share.
struct Pair {
    track: f64,
    noop: f64,
    server_us: f64,
    writer_us: f64,
}

impl Pair {
    fn ratio(&self) -> f64 {
        self.track / self.noop.max(1.0)
    }
}

/// Runs `rounds` rounds, each the baseline then `common.server`, and prints both ratios.
pub(crate) async fn ab(common: &Common, baseline: &Path, rounds: usize) -> anyhow::Result<()> {
    let binaries = [
        ("baseline", baseline.to_path_buf()),
        ("server", common.server.clone()),
    ];
    let mut ratios: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut tracks: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    println!(
        "| round | binary | track req/s | no-op req/s | ratio | server CPU µs/req | writer CPU µs/req |\n\
         |---|---|---|---|---|---|---|"
    );
    for round in 1..=rounds.max(1) {
        for (i, (label, binary)) in binaries.iter().enumerate() {
            let pair = pair(common, binary, &format!("{label}, round {round}")).await?;
            println!(
                "| {round} | {label} | {:.0} | {:.0} | {:.3} | {:.0} | {:.0} |",
                pair.track,
                pair.noop,
                pair.ratio(),
                pair.server_us,
                pair.writer_us
            );
            ratios[i].push(pair.ratio());
            tracks[i].push(pair.track);
        }
    }
    let (old, new) = (median(&mut ratios[0]), median(&mut ratios[1]));
    let (old_track, new_track) = (median(&mut tracks[0]), median(&mut tracks[1]));
    println!(
        "\nmedians: baseline ratio {old:.3} ({old_track:.0} req/s), server ratio {new:.3} \
         ({new_track:.0} req/s): server / baseline = {:.3} ({:+.1} %)",
        new / old,
        (new / old - 1.0) * 100.0
    );
    Ok(())
}

/// One binary's no-op and tracking runs, each on a fresh database.
async fn pair(common: &Common, binary: &Path, label: &str) -> anyhow::Result<Pair> {
    let common = Common {
        server: binary.to_path_buf(),
        ..common.clone()
    };
    let mut rps = [0.0; 2];
    let (mut server_us, mut writer_us) = (0.0, 0.0);
    for (slot, target) in [Target::Noop, Target::Track].into_iter().enumerate() {
        let dir = tempfile::tempdir()?;
        let row = measure(
            &common,
            &format!("{label}, {target:?}"),
            target,
            "normal",
            None,
            &dir.path().join("tracker.db"),
        )
        .await?;
        rps[slot] = row.requests_per_s;
        if target == Target::Track {
            server_us = row.server_cpu_us_per_request;
            writer_us = row.writer_cpu_us_per_request;
        }
    }
    Ok(Pair {
        noop: rps[0],
        track: rps[1],
        server_us,
        writer_us,
    })
}

/// The median (sorts `values`).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(super::median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
