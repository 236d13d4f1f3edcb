"""Who gets which Safe Links policy: rules, preset scopes, and the resolving `PolicySet`.

Rule logic is Defender's (`New-SafeLinksRule`): values within one condition are OR'ed,
different condition types are AND'ed, any exception excludes; at least one condition is
required. Precedence: Strict preset -> Standard preset -> custom rules by priority (0 first)
-> Built-in protection, which covers everyone else. The first scope that applies wins.
Group membership comes from the policy file (`groups`), as there is no directory to ask.
UPNs, domains and group names compare case-insensitively.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cachetools import LRUCache
from pydantic import Field, field_validator, model_validator

from shared.policy.model import DefenderKeysModel, PolicyError, SafeLinksPolicy, plain_text
from shared.policy.presets import (
    BUILT_IN_PROTECTION,
    BUILT_IN_PROTECTION_NAME,
    PRESETS,
    STANDARD,
    STRICT,
)

__all__ = ["PolicySet", "PresetScope", "Resolution", "SafeLinksRule", "normalise_upn"]

_DOMAIN = re.compile(
    r"(?=.{1,253}\Z)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}\Z"
)


def normalise_upn(value: str) -> str:
    """Lowercase and check a user principal name (`user@domain`)."""
    upn = value.strip().lower()
    local, at, domain = upn.rpartition("@")
    if not at or not local or not _DOMAIN.match(domain) or any(c.isspace() for c in local):
        raise ValueError(f"{value!r} is not a user principal name (user@domain)")
    return upn


def _normalise_domain(value: str) -> str:
    domain = value.strip().lower().rstrip(".")
    if not _DOMAIN.match(domain):
        raise ValueError(f"{value!r} is not a domain name")
    return domain


def _group_names(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(plain_text(v, "group name", 256) for v in values)


class PresetScope(DefenderKeysModel):
    """Who a preset (Strict or Standard) applies to: conditions and exceptions, no actions."""

    enabled: bool = True
    all_recipients: bool = False
    sent_to: tuple[str, ...] = ()
    sent_to_member_of: tuple[str, ...] = ()
    recipient_domain_is: tuple[str, ...] = ()
    except_if_sent_to: tuple[str, ...] = ()
    except_if_sent_to_member_of: tuple[str, ...] = ()
    except_if_recipient_domain_is: tuple[str, ...] = ()

    @field_validator("sent_to", "except_if_sent_to")
    @classmethod
    def _upns(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalise_upn(v) for v in values)

    @field_validator("recipient_domain_is", "except_if_recipient_domain_is")
    @classmethod
    def _domains(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_normalise_domain(v) for v in values)

    @field_validator("sent_to_member_of", "except_if_sent_to_member_of")
    @classmethod
    def _groups(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return _group_names(values)

    @model_validator(mode="after")
    def _needs_a_condition(self) -> PresetScope:
        has = bool(self.sent_to or self.sent_to_member_of or self.recipient_domain_is)
        if not has and not self.all_recipients:
            raise ValueError(
                "at least one condition is required "
                "(sent_to, sent_to_member_of or recipient_domain_is)"
            )
        if has and self.all_recipients:
            raise ValueError(
                "all_recipients excludes sent_to, sent_to_member_of, recipient_domain_is"
            )
        return self


class SafeLinksRule(PresetScope):
    """A custom rule: which recipients a custom policy applies to, and at which priority."""

    name: str
    policy: str
    priority: int = Field(ge=0)
    comments: str | None = Field(default=None, max_length=1024)

    @model_validator(mode="before")
    @classmethod
    def _defender_policy_key(cls, data: Any) -> Any:
        # Defender names the link to the policy `SafeLinksPolicy`, not `Policy`.
        if isinstance(data, dict) and "SafeLinksPolicy" in data:
            data = dict(data)
            data.setdefault("policy", data.pop("SafeLinksPolicy"))
        return data

    @model_validator(mode="after")
    def _no_all_recipients(self) -> SafeLinksRule:
        if self.all_recipients:
            raise ValueError("custom rules need explicit conditions; all_recipients is for presets")
        return self

    @field_validator("name", "policy")
    @classmethod
    def _names(cls, value: str) -> str:
        return plain_text(value, "name", 64)


@dataclass(frozen=True, slots=True)
class Resolution:
    """The effective policy for one user, the scope that chose it, and why."""

    policy: SafeLinksPolicy
    rule: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class _Scope:
    """A scope compiled to lowercase sets; `why(upn)` is None when it doesn't apply."""

    label: str
    rule: str
    policy: SafeLinksPolicy
    all_recipients: bool
    sent_to: frozenset[str] | None
    groups: tuple[tuple[str, frozenset[str]], ...] | None
    domains: frozenset[str] | None
    ex_upns: frozenset[str]
    ex_domains: frozenset[str]

    def why(self, upn: str, domain: str) -> str | None:
        if upn in self.ex_upns or domain in self.ex_domains:
            return None
        if self.all_recipients:
            return "applies to all recipients"
        reasons: list[str] = []
        if self.sent_to is not None:
            if upn not in self.sent_to:
                return None
            reasons.append(f"sent to {upn}")
        if self.groups is not None:
            group = next((name for name, members in self.groups if upn in members), None)
            if group is None:
                return None
            reasons.append(f"sent to member of {group}")
        if self.domains is not None:
            if domain not in self.domains:
                return None
            reasons.append(f"recipient domain is {domain}")
        return " and ".join(reasons)


class PolicySet:
    """Policies, rules, presets and groups, resolving a UPN to its effective policy."""

    def __init__(
        self,
        policies: Iterable[SafeLinksPolicy] = (),
        rules: Iterable[SafeLinksRule] = (),
        groups: Mapping[str, Iterable[str]] | None = None,
        *,
        strict: PresetScope | None = None,
        standard: PresetScope | None = None,
        cache_size: int = 4096,
    ) -> None:
        self.policies = self._index_policies(policies)
        self.groups = self._index_groups(groups or {})
        self._group_names = {name.strip().lower(): name.strip() for name in groups or {}}
        self.rules = self._check_rules(tuple(rules))
        self.strict, self.standard = strict, standard
        scopes: list[_Scope] = []
        for preset, scope in ((STRICT, strict), (STANDARD, standard)):
            if scope is not None and scope.enabled:
                scopes.append(self._compile(preset.name, preset.name, preset, scope))
        for rule in self.rules:
            if rule.enabled:
                label = f"rule {rule.name!r} (priority {rule.priority})"
                scopes.append(self._compile(label, rule.name, self.policies[rule.policy], rule))
        self._scopes = tuple(scopes)
        self._cache: LRUCache[str, Resolution] = LRUCache(maxsize=cache_size)
        self._lock = threading.Lock()

    @staticmethod
    def _index_policies(policies: Iterable[SafeLinksPolicy]) -> Mapping[str, SafeLinksPolicy]:
        out: dict[str, SafeLinksPolicy] = {}
        for policy in policies:
            key = policy.name
            if key in out:
                raise PolicyError(f"policies: the name {key!r} is used twice")
            if key.lower() in {name.lower() for name in PRESETS}:
                raise PolicyError(f"policies: {key!r} is the name of a preset policy")
            out[key] = policy
        return MappingProxyType(out)

    @staticmethod
    def _index_groups(groups: Mapping[str, Iterable[str]]) -> Mapping[str, frozenset[str]]:
        out: dict[str, frozenset[str]] = {}
        for name, members in groups.items():
            key = name.strip().lower()
            if not key:
                raise PolicyError("groups: a group name is empty")
            if key in out:
                raise PolicyError(f"groups: {name!r} is defined twice")
            if isinstance(members, str):
                raise PolicyError(f"groups.{name}: expected a list of UPNs")
            try:
                out[key] = frozenset(normalise_upn(m) for m in members)
            except (ValueError, AttributeError) as exc:
                raise PolicyError(f"groups.{name}: {exc}") from None
        return MappingProxyType(out)

    def _check_rules(self, rules: tuple[SafeLinksRule, ...]) -> tuple[SafeLinksRule, ...]:
        names: set[str] = set()
        priorities: dict[int, str] = {}
        policy_rule: dict[str, str] = {}
        for i, rule in enumerate(rules):
            where = f"rules[{i}] ({rule.name})"
            if rule.name.lower() in names:
                raise PolicyError(f"{where}: the rule name is used twice")
            names.add(rule.name.lower())
            if rule.priority in priorities:
                raise PolicyError(
                    f"{where}.priority: {rule.priority} is already used by "
                    f"rule {priorities[rule.priority]!r} (priorities are unique)"
                )
            priorities[rule.priority] = rule.name
            if rule.policy not in self.policies:
                raise PolicyError(f"{where}.policy: no policy named {rule.policy!r}")
            if rule.policy in policy_rule:
                raise PolicyError(
                    f"{where}.policy: policy {rule.policy!r} already has rule "
                    f"{policy_rule[rule.policy]!r} (a policy has one rule)"
                )
            policy_rule[rule.policy] = rule.name
        return tuple(sorted(rules, key=lambda r: r.priority))

    def _members(
        self, names: tuple[str, ...], where: str
    ) -> tuple[tuple[str, frozenset[str]], ...]:
        out = []
        for name in names:
            members = self.groups.get(name.lower())
            if members is None:
                raise PolicyError(f"{where}: no group named {name!r} under 'groups'")
            out.append((self._group_names[name.lower()], members))
        return tuple(out)

    def _compile(
        self, label: str, rule: str, policy: SafeLinksPolicy, scope: PresetScope
    ) -> _Scope:
        where = f"rule {rule!r}" if isinstance(scope, SafeLinksRule) else f"presets ({rule})"
        excluded = self._members(scope.except_if_sent_to_member_of, where)
        ex_upns = frozenset(scope.except_if_sent_to).union(*(m for _, m in excluded))
        return _Scope(
            label=label,
            rule=rule,
            policy=policy,
            all_recipients=scope.all_recipients,
            sent_to=frozenset(scope.sent_to) if scope.sent_to else None,
            groups=self._members(scope.sent_to_member_of, where)
            if scope.sent_to_member_of
            else None,
            domains=frozenset(scope.recipient_domain_is) if scope.recipient_domain_is else None,
            ex_upns=ex_upns,
            ex_domains=frozenset(scope.except_if_recipient_domain_is),
        )

    def policy(self, name: str) -> SafeLinksPolicy:
        """A custom or preset policy by name."""
        found = self.policies.get(name) or PRESETS.get(name)
        if found is None:
            raise PolicyError(f"no policy named {name!r}")
        return found

    def resolve(self, upn: str | None) -> Resolution:
        """The effective policy for `upn`; an unknown user (None, "") gets Built-in protection."""
        key = upn.strip().lower() if upn else ""
        if not key:
            return Resolution(
                BUILT_IN_PROTECTION,
                None,
                f"no rule matched: {BUILT_IN_PROTECTION_NAME} applies (unknown user)",
            )
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        result = self._resolve(key)
        with self._lock:
            self._cache[key] = result
        return result

    def _resolve(self, upn: str) -> Resolution:
        domain = upn.rpartition("@")[2]
        for scope in self._scopes:
            why = scope.why(upn, domain)
            if why is not None:
                return Resolution(scope.policy, scope.rule, f"{scope.label}: {why}")
        return Resolution(
            BUILT_IN_PROTECTION, None, f"no rule matched: {BUILT_IN_PROTECTION_NAME} applies"
        )
