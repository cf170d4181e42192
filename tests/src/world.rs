//! An emulator with SDK clients; fixture builders are in the service modules.

use aws_config::SdkConfig;

use crate::emulator::Emulator;

/// An emulator with clients and fixture builders.
#[derive(Debug)]
pub struct World {
    pub emulator: Emulator,
    pub sdk: SdkConfig,
    pub ecs: aws_sdk_ecs::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl World {
    pub async fn new() -> Self {
        let emulator = Emulator::start();
        let sdk = emulator.sdk_config().await;
        World {
            ecs: aws_sdk_ecs::Client::new(&sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(&sdk),
            ec2: aws_sdk_ec2::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            lambda: aws_sdk_lambda::Client::new(&sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
            sdk,
            emulator,
        }
    }
}
