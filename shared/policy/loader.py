"""Reading a Safe Links policy file (YAML) into a `PolicySet`.

Format (every key may be written in snake_case or in Defender's PascalCase; see example.yaml):

```yaml
groups:                       # group name -> member UPNs (stands in for directory groups)
  Finance: [alice@contoso.com, bob@contoso.com]

policies:                     # custom policies (New-SafeLinksPolicy settings)
  - name: Finance links
    AllowClickThrough: false
    track_clicks: true
    scan_wait_seconds: 10
    DoNotRewriteUrls: ["intranet.contoso.com/*"]
    custom_notification_text: "Questions? Call the service desk on 1234."
    branding: {name: Contoso, logo_url: "https://contoso.com/logo.png"}
    reply_mode: risky-only    # always | risky-only | silent

rules:                        # one rule per custom policy (New-SafeLinksRule)
  - name: Finance
    policy: Finance links     # or SafeLinksPolicy:
    priority: 0               # 0 is highest; unique
    sent_to_member_of: [Finance]
    except_if_sent_to: [carol@contoso.com]

presets:                      # who gets the Strict / Standard presets (checked first)
  strict: {sent_to: [ceo@contoso.com]}
  standard: {recipient_domain_is: [contoso.com]}
```

Everyone else gets Built-in protection. With no file (`path=None`) everyone does. Any problem
raises `PolicyError` naming the file and the key (`policies[0].AllowClickThrough: ...`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_pascal, to_snake

from shared.policy.model import DefenderKeysModel, PolicyError, PolicyFileError, SafeLinksPolicy
from shared.policy.rules import PolicySet, PresetScope, SafeLinksRule

__all__ = ["PolicyFile", "configured_policies", "load_policies", "parse_policies"]


class _Presets(DefenderKeysModel):
    strict: PresetScope | None = None
    standard: PresetScope | None = None


class PolicyFile(BaseModel):
    """The top level of a policy file."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_pascal, populate_by_name=True
    )

    groups: dict[str, list[str]] = Field(default_factory=dict)
    policies: tuple[SafeLinksPolicy, ...] = ()
    rules: tuple[SafeLinksRule, ...] = ()
    presets: _Presets = Field(default_factory=_Presets)


def configured_policies(path: Path | None) -> PolicySet:
    """The policies of the configured file: ``load_policies``, its failure a configuration error."""
    try:
        return load_policies(path)
    except PolicyError as exc:
        raise PolicyFileError(str(exc)) from None


def load_policies(path: Path | None) -> PolicySet:
    """The policy set in the YAML file at `path`; `None` gives the defaults (Built-in only)."""
    if path is None:
        return PolicySet()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: the policy file is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(f"{path}: not valid YAML{where}: {problem}") from None
    return parse_policies(data, str(path))


def parse_policies(data: object, source: str = "<policy>") -> PolicySet:
    """A policy set from already-parsed YAML/JSON data; `source` names it in errors."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise PolicyError(f"{source}: the top level must be a mapping (groups, policies, ...)")
    try:
        parsed = PolicyFile.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{source}: {_describe(exc, data)}") from None
    try:
        return PolicySet(
            parsed.policies,
            parsed.rules,
            parsed.groups,
            strict=parsed.presets.strict,
            standard=parsed.presets.standard,
        )
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from None


def _describe(exc: ValidationError, data: object) -> str:
    """The first few errors as `key.path: message`, spelling keys as the file does."""
    lines = []
    for error in exc.errors()[:5]:
        key = _key_path(error["loc"], data)
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{key}: {message}" if key else message)
    more = exc.error_count() - len(lines)
    if more > 0:
        lines.append(f"(and {more} more)")
    return "; ".join(lines)


def _key_path(loc: Sequence[int | str], data: object) -> str:
    out = ""
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        key = part
        if isinstance(node, Mapping):
            for spelling in (part, to_snake(part), to_pascal(part)):
                if spelling in node:
                    key = spelling
                    break
            node = node.get(key)
        else:
            node = None
        out += f".{key}" if out else key
    return out
