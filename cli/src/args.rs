//! The command line: every flag of every command, with help and examples. Values are parsed
//! into their types here (versions, durations, keys), so a usage mistake exits 2 before any
//! work is done.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rel_format::{PublicKey, Version};

use crate::env;
use crate::keys::{SecretKeyFile, parse_trusted_key};
use crate::values::{Lifetime, ReleaseRef, existing_dir, existing_file, parse_channel, parse_name, parse_registry};

#[derive(Debug, Parser)]
#[command(
    name = "rel",
    version,
    about = "Signed, content-addressed OTP releases for zero-downtime hot upgrades",
    after_help = "Examples:\n  rel serve                                    # a registry on ./rel-data\n  rel keygen ci --out-dir keys\n  rel push _build/prod/rel/shop/shop-0.1.0.tar.gz --key keys/ci.key\n  rel list\n  rel versions shop\n  rel path shop --from 0.1.0 --to 0.2.0\n  rel pull shop@0.2.0 -o shop.tar.gz --trusted-key keys/ci.pub  # NAME@VERSION, or --version\n\nExit codes: 0 success, 1 failure (not found, verification failed, refused), 2 usage error."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Registry URL.
    #[arg(long, global = true, env = env::REL_REGISTRY, value_name = "URL", value_parser = parse_registry)]
    pub registry: Option<reqwest::Url>,
    /// Bearer token for the registry.
    #[arg(long, global = true, env = env::REL_TOKEN, value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Client config file (default: $XDG_CONFIG_HOME/rel/config.toml).
    #[arg(long = "client-config", global = true, env = env::REL_CONFIG, value_name = "FILE")]
    pub client_config: Option<PathBuf>,
    /// Local chunk cache (default: $XDG_CACHE_HOME/rel/chunks).
    #[arg(long, global = true, env = env::REL_CACHE_DIR, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Print nothing but errors (and requested output).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log what rel does: -v each request and what came from the cache, -vv more of rel, -vvv
    /// everything (REL_LOG sets a filter of its own).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a registry.
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
    /// Mint, list and revoke the registry's tokens (its tokens file)
    #[cfg(feature = "serve")]
    #[command(subcommand)]
    Token(TokenCommand),
    /// Make an ed25519 key pair: NAME.key (secret, mode 0600) and NAME.pub.
    Keygen(KeygenArgs),
    /// Chunk, sign and upload a release (or an upgrade).
    Push(PushArgs),
    /// Fetch and verify a release, then write it as a tarball or a folder.
    Pull(PullArgs),
    /// List the releases the registry holds, with their latest version and channels.
    List(ListArgs),
    /// List a release's versions in order.
    Versions(NameArgs),
    /// Summarise one stored version.
    Show(ShowArgs),
    /// The cheapest upgrade path between two versions.
    Path(PathArgs),
    /// Point a channel at a version (signed, with a growing sequence).
    Promote(PromoteArgs),
    /// Hide a version from resolution without deleting it.
    Yank(YankArgs),
    /// Verify a signed manifest file, or a release against the registry.
    Verify(VerifyArgs),
    /// Print an AUTO_VERSION string for the git work tree, as edeliver makes it.
    Version(VersionArgs),
    /// Write the appups for upgrading one release to another, from their BEAM files.
    Appup(AppupArgs),
    /// Build a hot-upgrade artifact (relup and changed libs only), and optionally push it.
    BuildUpgrade(BuildUpgradeArgs),
    /// Install a release cold into an OTP target layout (first deploy of a host).
    Install(InstallArgs),
    /// Take over a root another tool deployed, matched by content to its stored release.
    Adopt(AdoptArgs),
    /// Move the running node to a version or channel: hot, step by step, else by a restart.
    Upgrade(HostUpgradeArgs),
    /// Go back to an older installed release: live where a downgrade exists or can be built.
    Rollback(RollbackArgs),
    /// What a host runs: installed versions, current and permanent, the node, the last
    /// operation.
    Status(StatusArgs),
    /// Apply the host's current config to the running node, live (config_change/3).
    ReloadConfig(ReloadConfigArgs),
    /// Collect chunks that no manifest references (admin).
    Gc(GcArgs),
    /// Print shell completions.
    Completions(CompletionsArgs),
}

impl Command {
    /// Whether this runs a registry (which logs more by default).
    pub fn is_serve(&self) -> bool {
        #[cfg(feature = "serve")]
        if matches!(self, Command::Serve(_)) {
            return true;
        }
        false
    }

    /// Whether its log lines are JSON (`serve --log-format json`).
    pub fn logs_json(&self) -> bool {
        #[cfg(feature = "serve")]
        if let Command::Serve(a) = self {
            return a.log_format == LogFormat::Json;
        }
        false
    }
}

#[cfg(feature = "serve")]
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = env::REL_LISTEN, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Storage: file://PATH (default file://rel-data), s3://BUCKET[/PREFIX] or memory://.
    #[arg(long, env = env::REL_STORE, value_name = "URL")]
    pub store: Option<String>,
    /// Registry config file (TOML).
    #[arg(long, env = env::REL_SERVER_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Accept only manifests and channel pointers signed by these keys (repeatable).
    #[arg(long = "publisher-key", env = env::REL_PUBLISHER_KEYS, value_delimiter = ',', value_name = "FILE")]
    pub publisher_keys: Vec<PathBuf>,
    /// Token file (TOML; tokens stored as sha256).
    #[arg(long, env = env::REL_TOKENS, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Allow a non-loopback address without tokens.
    #[arg(long)]
    pub insecure: bool,
    /// Start even if the store ignores create-only and compare-and-swap writes.
    #[arg(long)]
    pub accept_unsafe_store: bool,
    /// Stop after this many seconds (for demos and tests).
    #[arg(long, hide = true, value_name = "SECONDS")]
    pub exit_after: Option<u64>,
    /// Log lines as text for people, or one JSON object each for a log pipeline.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "REL_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[cfg(feature = "serve")]
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a token and add it, hashed, to the tokens file; the token is printed once.
    Create(TokenCreateArgs),
    /// The tokens of the file: names, scopes, releases and expiry (never the secrets).
    List(TokenListArgs),
    /// Remove a token from the file; a running registry refuses it from its next request.
    Revoke(TokenRevokeArgs),
}

#[cfg(feature = "serve")]
#[derive(Debug, Args)]
pub struct TokenFileArg {
    /// The registry's tokens file (its `tokens` setting).
    #[arg(long, env = env::REL_TOKENS, value_name = "FILE")]
    pub file: PathBuf,
}

#[cfg(feature = "serve")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    Pull,
    Push,
    Admin,
}

#[cfg(feature = "serve")]
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// A name for people and logs (e.g. `ci`, `host-eu-1`), unique in the file.
    #[arg(value_parser = parse_token_name)]
    pub name: String,
    #[command(flatten)]
    pub file: TokenFileArg,
    /// What it may do: pull, push (and pull) or admin (and push).
    #[arg(long, value_enum)]
    pub scope: ScopeArg,
    /// Release names (globs: `shop_*`) it applies to (repeatable; default: all).
    #[arg(long = "release", value_name = "GLOB")]
    pub releases: Vec<String>,
    /// How long it stays valid (e.g. 90d, 12h).
    #[arg(long, default_value = "90d", value_name = "DURATION")]
    pub expires_in: Lifetime,
    /// Print the token and its entry as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "serve")]
#[derive(Debug, Args)]
pub struct TokenListArgs {
    #[command(flatten)]
    pub file: TokenFileArg,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "serve")]
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    pub name: String,
    #[command(flatten)]
    pub file: TokenFileArg,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "serve")]
fn parse_token_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "`{}` is not a token name: letters, digits, `-`, `_` and `.`, at most 64",
            s.escape_debug()
        ))
    }
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Key name, recorded in every signature (e.g. `ci-2026`).
    pub name: String,
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub out_dir: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "serve")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    Release,
    Upgrade,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// A release: .tar.gz, .tar, .tar.zst or an unpacked release folder.
    pub artifact: PathBuf,
    /// Secret key to sign with (the NAME.key file of `rel keygen`).
    #[arg(long, env = env::REL_KEY, value_name = "FILE", value_parser = SecretKeyFile::parse)]
    pub key: Option<SecretKeyFile>,
    /// Also point this channel at the pushed version.
    #[arg(long, value_name = "CHANNEL", value_parser = parse_channel)]
    pub channel: Option<String>,
    /// Read and chunk the artifact and ask the registry which chunks it lacks, but upload
    /// nothing: what a push would send, and whether the version is already stored.
    #[arg(long)]
    pub dry_run: bool,
    /// Release name (default: from the .rel file).
    #[arg(long, value_parser = parse_name)]
    pub name: Option<String>,
    /// Version (default: from the .rel file; picks among several).
    #[arg(long = "release-version", value_name = "VERSION")]
    pub version: Option<Version>,
    /// What the artifact is.
    #[arg(long, value_enum, default_value = "release")]
    pub kind: KindArg,
    /// For an upgrade: the versions it upgrades from (repeatable).
    #[arg(long, value_name = "VERSION")]
    pub from: Vec<Version>,
    /// Packs compressed and uploaded at once (each about 2 MiB before compression).
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Push `releases/COOKIE` (mix's distribution cookie) too. Left out by default: it is a
    /// secret, and each host keeps its own (`rel install --cookie-file`).
    #[arg(long)]
    pub include_cookie: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Trusted publisher key: a NAME.pub file or `name:base64` (repeatable).
    #[arg(
        long = "trusted-key",
        env = env::REL_TRUSTED_KEYS,
        value_delimiter = ',',
        value_name = "KEY",
        value_parser = parse_trusted_key
    )]
    pub trusted_keys: Vec<PublicKey>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["version", "channel", "digest"])))]
pub struct PullArgs {
    #[arg(value_parser = parse_name)]
    pub name: String,
    /// Exact version to pull.
    #[arg(long = "version", value_name = "VERSION")]
    pub version: Option<Version>,
    /// Pull what this channel points at.
    #[arg(long, value_parser = parse_channel)]
    pub channel: Option<String>,
    /// Pull the release whose manifest has this digest (`rel show` prints it; also
    /// `NAME@sha256:…`): exactly that artifact, or nothing.
    #[arg(long, value_name = "sha256:HEX")]
    pub digest: Option<rel_format::Digest>,
    /// Write a tarball; the extension picks the format: .tar.gz, .tar or .tar.zst.
    #[arg(
        short = 'o',
        long,
        value_name = "FILE",
        conflicts_with = "into",
        required_unless_present = "into"
    )]
    pub output: Option<PathBuf>,
    /// Extract into this new directory.
    #[arg(long, value_name = "DIR")]
    pub into: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Accept a channel pointer older than one already seen. Dangerous: it is how a
    /// rollback attack looks.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Batches of chunks fetched at once (each about 1 MiB compressed).
    #[arg(long, default_value_t = crate::fetch::JOBS)]
    pub jobs: usize,
    /// Fetch changed chunks whole, not as deltas against the cached release closest to this
    /// one (each delta costs the registry a compression).
    #[arg(long)]
    pub no_deltas: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    #[arg(value_parser = parse_name)]
    pub name: String,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[arg(value_parser = parse_name)]
    pub name: String,
    pub version: Version,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// With --json: add the stored signed manifest, every chunk included (`rel verify`
    /// accepts the output); without it the chunks are counted.
    #[arg(long, requires = "json")]
    pub signed: bool,
}

#[derive(Debug, Args)]
pub struct PathArgs {
    #[arg(value_parser = parse_name)]
    pub name: String,
    #[arg(long, value_name = "VERSION")]
    pub from: Version,
    #[arg(long, value_name = "VERSION")]
    pub to: Version,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[arg(value_parser = parse_name)]
    pub name: String,
    /// The version to point at (not with --renew).
    #[arg(required_unless_present = "renew")]
    pub version: Option<Version>,
    #[arg(long, value_parser = parse_channel)]
    pub channel: String,
    /// Sign the channel's current version again, with the next sequence and a new expiry:
    /// the current pointer must verify with your key or a --trusted-key.
    #[arg(long, conflicts_with = "version")]
    pub renew: bool,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Secret key to sign with (the NAME.key file of `rel keygen`).
    #[arg(long, env = env::REL_KEY, value_name = "FILE", value_parser = SecretKeyFile::parse)]
    pub key: Option<SecretKeyFile>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// How long the pointer stays valid; hosts refuse it afterwards (e.g. 90d, 12h).
    #[arg(long, default_value_t = crate::channels::DEFAULT_LIFETIME, value_name = "DURATION")]
    pub expires_in: Lifetime,
}

#[derive(Debug, Args)]
pub struct YankArgs {
    #[arg(value_parser = parse_name)]
    pub name: String,
    pub version: Version,
    /// Undo a yank.
    #[arg(long)]
    pub undo: bool,
    /// Yank only the upgrade to VERSION from this version (a corrected upgrade may then
    /// replace it).
    #[arg(long, value_name = "FROM")]
    pub upgrade_from: Option<Version>,
    /// Why, shown beside the version in listings and the web view (one line, at most 500
    /// bytes).
    #[arg(long, value_name = "TEXT", value_parser = parse_yank_reason, conflicts_with = "undo")]
    pub reason: Option<String>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn parse_yank_reason(s: &str) -> Result<String, String> {
    rel_format::api::Yank::check_reason(s).map(|()| s.to_owned())
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A signed manifest (.json), or a release tarball or folder to check against the
    /// registry's signed manifest.
    pub file: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Metadata tokens joined by `+` (or `,`): date, time, commit-count, commit-count-branch,
    /// revision, branch, branch-unless-master, mix-env.
    #[arg(long, env = "AUTO_VERSION", value_name = "TOKENS")]
    pub auto_version: Option<String>,
    /// Base version (default: from mix.exs, an .app.src or rebar.config).
    #[arg(long, value_name = "VERSION")]
    pub base: Option<Version>,
    /// The git work tree.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AppupArgs {
    /// The release upgraded from: a tarball, a folder, or NAME@VERSION in the registry.
    pub from: ReleaseRef,
    /// The release upgraded to: a tarball, a folder, or NAME@VERSION in the registry.
    pub to: ReleaseRef,
    /// Where to write `<app>.appup` files.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub making: MakingArgs,
}

/// What making appups takes besides the two releases.
#[derive(Debug, Args)]
pub struct MakingArgs {
    /// Your own appups and additions: `<app>.appup` replaces the generated one; `<app>.extra`
    /// holds `{up_before, [...]}.` `{up_after, [...]}.` `{down_before, [...]}.` `{down_after, [...]}.`
    /// and `{code_change, [{Module, FromVsn | '_', Extra}]}.` (SPEC.md §8.2)
    #[arg(long, value_name = "DIR")]
    pub appup_dir: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BuildUpgradeArgs {
    #[arg(value_parser = parse_name)]
    pub name: String,
    /// The version (in the registry) or release file the node runs; repeat for a relup that
    /// serves several.
    #[arg(long, required = true, value_name = "VERSION|PATH")]
    pub from: Vec<ReleaseRef>,
    /// The version (in the registry) or release file to upgrade to.
    #[arg(long, value_name = "VERSION|PATH")]
    pub to: ReleaseRef,
    /// Write the upgrade tarball here (.tar.gz, .tar or .tar.zst).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Sign and push it to the registry as an `upgrade` artifact.
    #[arg(long)]
    pub push: bool,
    /// Secret key to sign with (for --push; the NAME.key file of `rel keygen`).
    #[arg(long, env = env::REL_KEY, value_name = "FILE", value_parser = SecretKeyFile::parse)]
    pub key: Option<SecretKeyFile>,
    #[command(flatten)]
    pub making: MakingArgs,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    #[arg(value_parser = parse_name)]
    pub name: String,
    #[arg(long = "version", value_name = "VERSION")]
    pub version: Version,
    /// The target directory (it must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// The host's own sys.config: its keys win over the release's, in every version rel
    /// installs, upgrades to or rolls back to (SPEC.md §9.1).
    #[arg(long, alias = "link-config", value_name = "FILE", value_parser = existing_file)]
    pub sys_config: Option<PathBuf>,
    /// The host's own vm.args, in place of the release's in every version.
    #[arg(long, alias = "link-vm-args", value_name = "FILE", value_parser = existing_file)]
    pub vm_args: Option<PathBuf>,
    /// The distribution cookie of a mix release (`releases/COOKIE`). Default: the one pushed
    /// with the release (`rel push --include-cookie`), else a new random one.
    #[arg(long, value_name = "FILE", value_parser = existing_file)]
    pub cookie_file: Option<PathBuf>,
    /// ERTS to use when the release ships none (default: the host's `erl`, same version).
    #[arg(long, value_name = "DIR", value_parser = existing_dir)]
    pub erts: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    #[arg(value_parser = parse_name)]
    pub name: String,
    /// The version installed there (default: the one releases/start_erl.data boots).
    #[arg(long = "version", value_name = "VERSION")]
    pub version: Option<Version>,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HostArgs {
    /// The target directory the node runs from.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// Host config (default: ROOT/rel-host.toml): how to reach the node, hooks.
    #[arg(long, value_name = "FILE")]
    pub host_config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReloadConfigArgs {
    #[arg(value_parser = parse_name)]
    pub name: String,
    #[command(flatten)]
    pub host: HostArgs,
    /// Say what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(value_parser = parse_name)]
    pub name: String,
    #[command(flatten)]
    pub host: HostArgs,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to", "channel"])))]
pub struct HostUpgradeArgs {
    #[arg(value_parser = parse_name)]
    pub name: String,
    /// The version to reach.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<Version>,
    /// Reach what this channel points at.
    #[arg(long, value_parser = parse_channel)]
    pub channel: Option<String>,
    #[command(flatten)]
    pub host: HostArgs,
    /// Deploy by restarting the node on the new release, even where a hot upgrade exists.
    /// rel restarts anyway for an ERTS or Elixir change, changed native code (NIFs), a new
    /// major version, or no chain of stored upgrades; and deploys for the next start when the
    /// node is not running.
    #[arg(long, conflicts_with = "hot")]
    pub restart: bool,
    /// Hot-upgrade across a new major version or changed native code, which rel otherwise
    /// deploys by a restart (your appups must handle them).
    #[arg(long)]
    pub hot: bool,
    /// Print the plan (steps, sizes, instructions) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Accept a channel pointer older than one already seen (loudly).
    #[arg(long)]
    pub allow_downgrade: bool,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[arg(value_parser = parse_name)]
    pub name: String,
    /// The installed version to go back to (default: the newest one older than the
    /// running one), through the relups' downgrades, one step per release; where none has
    /// the way, a downgrade built here from the two stored releases (with trusted keys), else
    /// a restart.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<Version>,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    #[arg(long)]
    pub dry_run: bool,
    /// Override the registry's grace period.
    #[arg(long, value_name = "SECONDS")]
    pub grace_seconds: Option<u64>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}
