//! `tracker-bench sign-in-storm`: whether wrong Profile sign-ins slow tracking (issue #20).
//!
//! Argon2 once ran on the request workers: eight wrong sign-ins at once took tracking's p99
//! from 44 ms to 532 ms. The server is started with a Profile user and, by default, with the
//! sign-in rate limit off, so that every attempt costs a full Argon2 verification: the worst
//! case for tracking. Paced tracking runs alone, then with `attackers` clients posting wrong
//! passwords as fast as they are answered, alternating `rounds` times in one run; the figure is
//! the ratio of tracking's p99 with the storm to without (the bound: 2).

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc,
};

use crate::{
    load::{self, LoadConfig, Target},
    server::{self, Server, ServerOptions},
    Common,
};

/// The storm's shape.
#[derive(Debug, Clone)]
pub(crate) struct Storm {
    pub(crate) rate: f64,
    pub(crate) attackers: usize,
    pub(crate) rounds: usize,
    pub(crate) rate_limited: bool,
}

fn password_hash(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hash: {e}"))?
        .to_string())
}

pub(crate) async fn storm(common: &Common, storm: &Storm) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let limit = if storm.rate_limited {
        ""
    } else {
        "sign_in_per_minute = 0\n"
    };
    let server = Server::start(&ServerOptions {
        binary: common.server.clone(),
        db: dir.path().join("storm.db"),
        sync: "normal".into(),
        session_timeout: "20m".into(),
        shared: None,
        extra_config: format!(
            "[profile]\n{limit}\n[[profile.users]]\nname = \"ada\"\npassword_hash = \"{}\"\n",
            password_hash("correct horse battery staple")?
        ),
    })?;
    server::wait_healthy(&server.url).await?;
    let paced = |seed: u64| LoadConfig {
        url: server.url.clone(),
        target: Target::Track,
        visitors: common.visitors,
        duration: common.duration,
        rate: Some(storm.rate),
        seed,
        scenario: common.scenario,
    };
    let mut rows = Vec::new();
    for round in 0..storm.rounds {
        let quiet = load::run(&paced(common.seed + round as u64)).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let attempts = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let attackers: Vec<_> = (0..storm.attackers)
            .map(|n| {
                let (client, url, stop) = (client.clone(), server.url.clone(), stop.clone());
                let (attempts, refused) = (attempts.clone(), refused.clone());
                tokio::spawn(async move {
                    let mut guess = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        guess += 1;
                        let password = format!("guess-{n}-{guess}");
                        let answer = client
                            .post(format!("{url}/profile/login"))
                            .form(&[("name", "ada"), ("password", password.as_str())])
                            .send()
                            .await;
                        attempts.fetch_add(1, Ordering::Relaxed);
                        if answer.is_ok_and(|a| a.status() == 429) {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let stormy = load::run(&paced(common.seed + 1000 + round as u64)).await?;
        stop.store(true, Ordering::Relaxed);
        for attacker in attackers {
            let _ = attacker.await;
        }
        let p99 = |r: &load::LoadResult| r.latency.value_at_quantile(0.99) as f64 / 1000.0;
        let (quiet_p99, stormy_p99) = (p99(&quiet), p99(&stormy));
        let attempts = attempts.load(Ordering::Relaxed);
        let refused = refused.load(Ordering::Relaxed);
        let errors: u64 = quiet.errors.values().chain(stormy.errors.values()).sum();
        eprintln!(
            "  round {round}: p99 {quiet_p99:.2} ms alone, {stormy_p99:.2} ms with {} attackers \
             ({attempts} sign-ins, {refused} of them 429); ratio {:.2}",
            storm.attackers,
            stormy_p99 / quiet_p99
        );
        rows.push(serde_json::json!({
            "round": round,
            "p99_ms_alone": quiet_p99,
            "p99_ms_with_storm": stormy_p99,
            "ratio": stormy_p99 / quiet_p99,
            "sign_in_attempts": attempts,
            "sign_ins_refused_429": refused,
            "sign_ins_per_s": attempts as f64 / common.duration.as_secs_f64(),
            "tracking_errors": errors,
        }));
    }
    let mut ratios: Vec<f64> = rows.iter().filter_map(|r| r["ratio"].as_f64()).collect();
    let median = crate::median(&mut ratios);
    println!(
        "| rate | attackers | rate limit | rounds | p99 ratio (storm / alone), median | per round |\n|---|---|---|---|---|---|\n| {} | {} | {} | {} | {median:.2} | {} |",
        storm.rate,
        storm.attackers,
        if storm.rate_limited { "on" } else { "off" },
        storm.rounds,
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(path) = &common.json {
        std::fs::write(
            path,
            serde_json::to_string_pretty(
                &serde_json::json!({"median_ratio": median, "rounds": rows}),
            )?,
        )?;
    }
    server.stop();
    Ok(())
}
