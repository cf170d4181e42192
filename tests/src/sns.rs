//! SNS fixtures: a topic with an SQS queue subscribed, and what reached it as Lambda would receive it.

use serde_json::{Value, json};

use crate::World;

/// An SNS topic with an SQS queue subscribed, to read what is published to it.
#[derive(Debug, Clone)]
pub struct Topic {
    pub arn: String,
    pub queue_url: String,
}

impl World {
    pub async fn topic(&self, name: &str) -> Topic {
        let arn = self
            .sns
            .create_topic()
            .name(name)
            .send()
            .await
            .expect("CreateTopic")
            .topic_arn
            .unwrap_or_default();
        let queue_url = self
            .sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("CreateQueue")
            .queue_url
            .unwrap_or_default();
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("GetQueueAttributes");
        let queue_arn = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        self.sns
            .subscribe()
            .topic_arn(&arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("Subscribe");
        Topic { arn, queue_url }
    }

    /// What reached the topic since the last call, each as the SNS event Lambda would receive.
    pub async fn sns_events(&self, topic: &Topic) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&topic.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("ReceiveMessage");
            if out.messages().is_empty() {
                return events;
            }
            for m in out.messages() {
                let envelope: Value = serde_json::from_str(m.body().unwrap_or("{}")).expect("SNS envelope");
                events.push(json!({"Records": [{
                    "EventSource": "aws:sns", "EventVersion": "1.0",
                    "EventSubscriptionArn": format!("{}:sub", topic.arn),
                    "Sns": {
                        "Type": "Notification", "MessageId": envelope["MessageId"], "TopicArn": topic.arn,
                        "Subject": envelope["Subject"], "Message": envelope["Message"], "Timestamp": envelope["Timestamp"],
                        "SignatureVersion": "1", "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "",
                        "MessageAttributes": {}
                    }
                }]}));
                if let Some(handle) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&topic.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("DeleteMessage");
                }
            }
        }
    }
}
