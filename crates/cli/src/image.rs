//! `nanoclaw image build [--slim]`: builds the agent image on the local engine, with progress.

use std::path::PathBuf;
use std::process::ExitCode;

use nanoclaw_host::runners::{image, runtime::docker};

/// Options of `image build`.
pub struct BuildArgs {
    /// Build the slim (`FROM scratch`) image.
    pub slim: bool,
    /// Static runner binary for the slim image.
    pub agent_bin: Option<PathBuf>,
    /// Static busybox for the slim image.
    pub busybox: PathBuf,
    /// Tag override.
    pub tag: Option<String>,
    /// Build context of the full image.
    pub context: PathBuf,
}

/// Builds the image.
pub fn build(a: BuildArgs) -> anyhow::Result<ExitCode> {
    crate::run::runtime()?.block_on(async move {
        let engine = docker::connect().await?;
        let agent = a.agent_bin.unwrap_or_else(image::default_agent_bin);
        let (tag, context) = if a.slim {
            eprintln!(
                "building the slim image from {} and {}",
                agent.display(),
                a.busybox.display()
            );
            (
                a.tag.unwrap_or_else(|| image::SLIM_TAG.into()),
                image::slim_context(&agent, &a.busybox)?,
            )
        } else {
            eprintln!(
                "building the full image from {}/Dockerfile (needs a registry for its base image)",
                a.context.display()
            );
            (
                a.tag.unwrap_or_else(|| image::FULL_TAG.into()),
                image::dir_context(&a.context, &agent)?,
            )
        };
        image::build(&engine, &tag, context, |line| eprintln!("  {line}")).await?;
        let size = engine
            .inspect_image(&tag)
            .await
            .ok()
            .and_then(|i| i.size)
            .unwrap_or(0);
        println!("built {tag} ({:.1} MB)", size as f64 / 1e6);
        Ok(ExitCode::SUCCESS)
    })
}
