//! `atlantiplex-operator authentication-config`: the kube-apiserver `--authentication-config` file
//! that trusts an OpenID Connect provider with the names the operator binds (see `identity`).

use crate::identity::{AuthenticationConfig, SecondFactors, authentication_config};
use anyhow::Context as _;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct AuthenticationConfigArgs {
    /// The issuer URL (https), exactly as in its tokens' `iss`.
    #[arg(long)]
    pub issuer: String,
    /// Client ids whose ID tokens the API server accepts (repeat; kubectl's, the console's).
    #[arg(long = "audience", default_values_t = ["kubectl".to_string(), "atlantiplex-console".to_string()])]
    pub audiences: Vec<String>,
    /// PEM of the CA that signed the issuer's certificate, when it is not a public one (inlined).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// `amr` values that count as a second factor.
    #[arg(long = "second-factor", value_delimiter = ',', default_values_t = crate::identity::DEFAULT_SECOND_FACTORS.map(String::from))]
    pub second_factors: Vec<String>,
}

pub fn run(args: AuthenticationConfigArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.issuer.starts_with("https://"),
        "--issuer {}: kube-apiserver accepts only https issuers",
        args.issuer
    );
    let ca = match &args.ca_file {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("--ca-file {}", path.display()))?),
        None => None,
    };
    let factors = SecondFactors::new(args.second_factors);
    print!(
        "{}",
        authentication_config(&AuthenticationConfig {
            issuer: &args.issuer,
            audiences: &args.audiences,
            certificate_authority: ca.as_deref(),
            second_factors: &factors,
        })
    );
    Ok(())
}
