#!/usr/bin/env python3
"""Writes the lifecycle hook slots into template.yaml (or, with --check, fails if they are not current).

CloudFormation without Fn::ForEach cannot make one resource per name of a list parameter, so the template
has SLOTS conditional hook resources: slot nn takes the nn-th name of AutoScalingGroupNames and exists
only when that name is not empty. This writes, between the markers the template keeps:

- the conditions Hook01..HookNN (a name in that position),
- the LifecycleHook01..NN resources, hook nn named `<LifecycleHookName>-nn` (the lifecycle-drainer answers
  the numbered hooks of its LIFECYCLE_HOOK_NAMES),
- the conditions Launch01..NN (slot nn used and LaunchReadiness on) and the LaunchHook01..NN resources,
  launching hooks named `<LifecycleHookName>-launch-nn`.

The logical ids LifecycleHookNN and LaunchHookNN are part of the upgrade contract (tests/template/test_upgrade.py): never
renumber them.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SLOTS = 50
TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"

# The list padded with SLOTS empty names, so that Fn::Select never runs past its end.
PADDED = '!Split [",", !Join ["", [!Join [",", !Ref AutoScalingGroupNames], "' + "," * SLOTS + '"]]]'


def _slot(n: int) -> str:
    return f"{n:02d}"


def conditions() -> str:
    lines = ["  # Lifecycle hook slots: a group name in position nn (release/hook_slots.py)."]
    for i in range(SLOTS):
        lines.append(f'  Hook{_slot(i + 1)}: !Not [!Equals [!Select [{i}, {PADDED}], ""]]')
    lines.append("  # Launch hook slots: slot nn used, and launches held until ECS can place tasks.")
    for i in range(SLOTS):
        lines.append(f"  Launch{_slot(i + 1)}: !And [!Condition Hook{_slot(i + 1)}, !Condition LaunchReadinessOn]")
    return "\n".join(lines) + "\n"


def resources() -> str:
    out = []
    for i in range(SLOTS):
        n = _slot(i + 1)
        out.append(
            f"""  LifecycleHook{n}:
    Type: AWS::AutoScaling::LifecycleHook
    Condition: Hook{n}
    DependsOn: LifecycleDrainerFunctionLifecycleMessages
    Properties:
      AutoScalingGroupName: !Select [{i}, {PADDED}]
      LifecycleHookName: !Sub ${{LifecycleHookName}}-{n}
      LifecycleTransition: autoscaling:EC2_INSTANCE_TERMINATING
      HeartbeatTimeout: !Ref HookHeartbeatTimeout
      DefaultResult: CONTINUE
      NotificationTargetARN: !Ref LifecycleTopic
      RoleARN: !GetAtt LifecycleHookRole.Arn
"""
        )
    for i in range(SLOTS):
        n = _slot(i + 1)
        out.append(
            f"""  LaunchHook{n}:
    Type: AWS::AutoScaling::LifecycleHook
    Condition: Launch{n}
    DependsOn: LifecycleDrainerFunctionLifecycleMessages
    Properties:
      AutoScalingGroupName: !Select [{i}, {PADDED}]
      LifecycleHookName: !Sub ${{LifecycleHookName}}-launch-{n}
      LifecycleTransition: autoscaling:EC2_INSTANCE_LAUNCHING
      HeartbeatTimeout: !Ref HookHeartbeatTimeout
      DefaultResult: CONTINUE
      NotificationTargetARN: !Ref LifecycleTopic
      RoleARN: !GetAtt LifecycleHookRole.Arn
"""
        )
    return "".join(out)


BLOCKS = {
    "conditions": conditions,
    "hooks": resources,
}


def render(text: str) -> str:
    for name, make in BLOCKS.items():
        begin = f"# BEGIN generated {name}\n"
        end = f"# END generated {name}\n"
        pattern = re.compile(r"(?m)^([ \t]*)" + re.escape(begin) + r".*?^[ \t]*" + re.escape(end), re.S)
        found = pattern.search(text)
        if not found:
            raise SystemExit(f"{TEMPLATE.name}: no '{begin.strip()}' ... '{end.strip()}' block")
        indent = found.group(1)
        text = text[: found.start()] + indent + begin + make() + indent + end + text[found.end() :]
    return text


def main() -> int:
    text = TEMPLATE.read_text()
    new = render(text)
    if "--check" in sys.argv[1:]:
        if new != text:
            print(f"{TEMPLATE.name}: the lifecycle hook slots are not current; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    TEMPLATE.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
