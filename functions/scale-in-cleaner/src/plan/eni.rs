//! How many `awsvpc` tasks an instance type can run: each takes an elastic network interface of its
//! own. Transcribed from "Elastic network interface trunking", Supported Amazon EC2 instance types
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/eni-trunking-supported-instance-types.html>):
//! the task limit without trunking (the type's ENIs less the primary one) and with trunking (on instances
//! launched after opting in to `awsvpcTrunking`; they carry the `ecs.awsvpc-trunk-id` attribute).
//!
//! Only the families below are known. For any other type the limit is unknown, and the planner does not
//! move an `awsvpc` task onto such an instance rather than guess.

/// (family, [(size, task limit without trunking, task limit with trunking)]).
type Family = (&'static str, &'static [(&'static str, u32, u32)]);

const NITRO: &[(&str, u32, u32)] = &[
    ("large", 2, 10),
    ("xlarge", 3, 20),
    ("2xlarge", 3, 40),
    ("4xlarge", 7, 60),
    ("8xlarge", 7, 60),
    ("12xlarge", 7, 60),
    ("16xlarge", 14, 120),
    ("24xlarge", 14, 120),
];
const GRAVITON2: &[(&str, u32, u32)] = &[
    ("medium", 1, 4),
    ("large", 2, 10),
    ("xlarge", 3, 20),
    ("2xlarge", 3, 40),
    ("4xlarge", 7, 60),
    ("8xlarge", 7, 60),
    ("12xlarge", 7, 60),
    ("16xlarge", 14, 120),
    ("metal", 14, 120),
];
const SIXTH_GEN: &[(&str, u32, u32)] = &[
    ("large", 2, 10),
    ("xlarge", 3, 20),
    ("2xlarge", 3, 40),
    ("4xlarge", 7, 60),
    ("8xlarge", 7, 90),
    ("12xlarge", 7, 120),
    ("16xlarge", 14, 120),
    ("24xlarge", 14, 120),
    ("32xlarge", 14, 120),
    ("metal", 14, 120),
];
/// As [`GRAVITON2`], without a `metal` size in the table.
const C7G: &[(&str, u32, u32)] = &[
    ("medium", 1, 4),
    ("large", 2, 10),
    ("xlarge", 3, 20),
    ("2xlarge", 3, 40),
    ("4xlarge", 7, 60),
    ("8xlarge", 7, 60),
    ("12xlarge", 7, 60),
    ("16xlarge", 14, 120),
];
const C5: &[(&str, u32, u32)] = &[
    ("large", 2, 10),
    ("xlarge", 3, 20),
    ("2xlarge", 3, 40),
    ("4xlarge", 7, 60),
    ("9xlarge", 7, 60),
    ("12xlarge", 7, 60),
    ("18xlarge", 14, 120),
    ("24xlarge", 14, 120),
];
const R5: &[(&str, u32, u32)] = &[
    ("large", 2, 10),
    ("xlarge", 3, 20),
    ("2xlarge", 3, 40),
    ("4xlarge", 7, 60),
    ("12xlarge", 7, 60),
    ("16xlarge", 14, 120),
    ("24xlarge", 14, 120),
];
const G5: &[(&str, u32, u32)] = &[
    ("xlarge", 3, 6),
    ("2xlarge", 3, 19),
    ("4xlarge", 7, 40),
    ("8xlarge", 7, 90),
    ("12xlarge", 14, 120),
    ("16xlarge", 7, 120),
    ("24xlarge", 14, 120),
    ("48xlarge", 6, 120),
];
const P3: &[(&str, u32, u32)] = &[("2xlarge", 3, 40), ("8xlarge", 7, 60), ("16xlarge", 7, 120)];

const FAMILIES: &[Family] = &[
    ("m5", NITRO),
    ("m5a", NITRO),
    ("m5d", NITRO),
    ("m6g", GRAVITON2),
    ("m6gd", GRAVITON2),
    ("m6i", SIXTH_GEN),
    ("m6a", SIXTH_GEN),
    ("m6id", SIXTH_GEN),
    ("c5", C5),
    ("c5d", C5),
    ("c6g", GRAVITON2),
    ("c6gd", GRAVITON2),
    ("c6i", SIXTH_GEN),
    ("c6a", SIXTH_GEN),
    ("c6id", SIXTH_GEN),
    ("c7g", C7G),
    ("r5", R5),
    ("r6g", GRAVITON2),
    ("r6gd", GRAVITON2),
    ("r6i", SIXTH_GEN),
    ("r6a", SIXTH_GEN),
    ("g5", G5),
    ("p3", P3),
];

/// Tasks in `awsvpc` network mode an instance of `instance_type` can run; `trunk`: it has a trunk ENI.
pub fn awsvpc_task_limit(instance_type: &str, trunk: bool) -> Option<u32> {
    let (family, size) = instance_type.split_once('.')?;
    let (_, sizes) = FAMILIES.iter().find(|(f, _)| *f == family)?;
    let (_, without, with) = sizes.iter().find(|(s, _, _)| *s == size)?;
    Some(if trunk { *with } else { *without })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_limits_with_and_without_trunking() {
        assert_eq!(awsvpc_task_limit("m5.large", false), Some(2));
        assert_eq!(awsvpc_task_limit("m5.large", true), Some(10));
        assert_eq!(awsvpc_task_limit("c5.9xlarge", true), Some(60));
        assert_eq!(awsvpc_task_limit("m6i.8xlarge", true), Some(90));
        assert_eq!(awsvpc_task_limit("c6g.medium", false), Some(1));
        assert_eq!(awsvpc_task_limit("g5.48xlarge", false), Some(6));
    }

    #[test]
    fn unknown_types_have_no_limit() {
        for t in ["t3.micro", "m7i.large", "m5.metal", "r5.8xlarge", "c7g.metal", "m5", ""] {
            assert_eq!(awsvpc_task_limit(t, false), None, "{t}");
        }
    }
}
