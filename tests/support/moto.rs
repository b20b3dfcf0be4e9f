//! A moto server (AWS API test double) on 127.0.0.1, started per test on a free port.
//! `scripts/test` installs moto into a virtualenv and points `IRSA_MIGRATE_MOTO` at its
//! `moto_server`.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let server = std::env::var("IRSA_MIGRATE_MOTO").expect(
            "IRSA_MIGRATE_MOTO must name moto_server; run the suite with scripts/test, which installs moto",
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // AWS-managed policies (AmazonEKSWorkerNodePolicy...) exist only when asked for.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            // The fixtures' account.
            .env("MOTO_ACCOUNT_ID", "111122223333")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not listen on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The environment a user would set to point the tool (or the AWS CLI) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ]
    }
}

impl Moto {
    /// An SDK IAM client for seeding and inspecting this server directly, as an operator's
    /// colleague would change IAM behind the tool's back.
    pub fn iam(&self, runtime: &tokio::runtime::Runtime) -> aws_sdk_iam::Client {
        let config = runtime.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(&self.endpoint)
                .region(aws_config::Region::new("eu-west-1"))
                .credentials_provider(aws_sdk_iam::config::Credentials::new(
                    "testing", "testing", None, None, "test",
                ))
                .load(),
        );
        aws_sdk_iam::Client::new(&config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
