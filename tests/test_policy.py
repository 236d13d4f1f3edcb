"""Safe Links policies: presets, settings validation, rule logic, precedence and the loader."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared.policy import (
    BUILT_IN_PROTECTION,
    PRESETS,
    STANDARD,
    STRICT,
    PolicyError,
    PolicySet,
    SafeLinksPolicy,
    load_policies,
    parse_policies,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "shared" / "policy" / "example.yaml"

# (setting, Built-in, Standard, Strict) -- Defender's recommended-settings table.
PRESET_TABLE = [
    ("enable_safe_links_for_email", True, True, True),
    ("enable_for_internal_senders", False, True, True),
    ("scan_urls", True, True, True),
    ("enable_safe_links_for_teams", True, True, True),
    ("enable_safe_links_for_office", True, True, True),
    ("track_clicks", True, True, True),
    ("allow_click_through", True, False, False),
    ("enable_organization_branding", False, False, False),
    ("custom_notification_text", None, None, None),
    ("do_not_rewrite_urls", (), (), ()),
]


@pytest.mark.parametrize(("setting", "built_in", "standard", "strict"), PRESET_TABLE)
def test_preset_values_match_defender(
    setting: str, built_in: object, standard: object, strict: object
) -> None:
    """Each preset carries Defender's recommended value for every Safe Links setting."""
    assert getattr(BUILT_IN_PROTECTION, setting) == built_in
    assert getattr(STANDARD, setting) == standard
    assert getattr(STRICT, setting) == strict


def test_presets_are_in_precedence_order() -> None:
    """PRESETS lists Strict, Standard, then Built-in protection."""
    assert list(PRESETS.values()) == [STRICT, STANDARD, BUILT_IN_PROTECTION]


def test_policies_are_frozen() -> None:
    """A policy cannot be changed after it is built."""
    with pytest.raises(ValidationError):
        BUILT_IN_PROTECTION.allow_click_through = False  # type: ignore[misc]


def test_pascal_and_snake_keys_are_equivalent() -> None:
    """Defender's PascalCase keys and snake_case keys build the same policy."""
    pascal = SafeLinksPolicy.model_validate(
        {"Name": "p", "AllowClickThrough": True, "DoNotRewriteUrls": ["contoso.com/*"]}
    )
    snake = SafeLinksPolicy.model_validate(
        {"name": "p", "allow_click_through": True, "do_not_rewrite_urls": ["contoso.com/*"]}
    )
    assert pascal == snake
    assert pascal.allow_click_through is True


def test_custom_defaults_follow_powershell() -> None:
    """A custom policy with no settings has New-SafeLinksPolicy's defaults."""
    policy = SafeLinksPolicy(name="p")
    assert policy.allow_click_through is False
    assert policy.track_clicks and policy.scan_urls and policy.enable_for_internal_senders
    assert policy.scan_wait_seconds == 5.0
    assert policy.reply_mode == "risky-only"


BAD_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"scan_wait_seconds": 61}, "less than or equal to 60"),
    ({"scan_wait_seconds": -1}, "greater than or equal to 0"),
    ({"CustomNotificationText": "x" * 201}, "at most 200"),
    ({"custom_notification_text": "line1\nline2"}, "one line"),
    ({"DoNotRewriteUrls": ["*.a*.b*.c/*"]}, "at most 3 wildcards"),
    ({"reply_mode": "loud"}, "always"),
    ({"branding": {"name": "C", "logo_url": "http://contoso.com/l.png"}}, "https"),
    ({"EnableOrganizationBranding": True}, "needs a 'branding' block"),
    ({"AllowClickThru": True}, "Extra inputs"),
    ({"name": "  "}, "must not be empty"),
]


@pytest.mark.parametrize(("settings", "reason"), BAD_SETTINGS)
def test_invalid_settings_are_refused(settings: dict[str, Any], reason: str) -> None:
    """Out-of-range or malformed settings fail validation with a clear reason."""
    with pytest.raises(ValidationError, match=reason):
        SafeLinksPolicy.model_validate({"name": "p", **settings})


def test_notification_text_of_200_characters_is_accepted() -> None:
    """Custom notification text up to 200 characters is kept (blank means none)."""
    assert SafeLinksPolicy(name="p", custom_notification_text="x" * 200).custom_notification_text
    assert SafeLinksPolicy(name="p", custom_notification_text="  ").custom_notification_text is None


def test_branding_switch() -> None:
    """Branding is on exactly when a branding block is set; the Defender switch can turn it off."""
    block = {"name": "Contoso", "logo_url": "https://contoso.com/logo.png"}
    on = SafeLinksPolicy.model_validate({"name": "p", "branding": block})
    assert on.enable_organization_branding is True
    off = SafeLinksPolicy.model_validate(
        {"name": "p", "branding": block, "EnableOrganizationBranding": False}
    )
    assert off.enable_organization_branding is False and off.branding is None


def test_rewrite_exemptions_are_compiled_per_policy() -> None:
    """A policy's DoNotRewriteUrls list is normalised and usable for matching."""
    policy = SafeLinksPolicy(name="p", do_not_rewrite_urls=("Contoso.com/*",))
    assert policy.do_not_rewrite_urls == ("contoso.com/*",)
    assert policy.rewrite_exemptions.matches("https://contoso.com/a")
    assert not policy.rewrite_exemptions.matches("https://www.contoso.com/a")


def _set(rules: list[dict[str, Any]], **extra: Any) -> PolicySet:
    names = {r.get("policy", r.get("SafeLinksPolicy")) for r in rules}
    data: dict[str, Any] = {
        "groups": {"Finance": ["alice@contoso.com", "Bob@Contoso.com"], "Ops": ["ed@contoso.com"]},
        "policies": [{"name": n} for n in sorted(names)],
        "rules": rules,
        **extra,
    }
    return parse_policies(data, "test.yaml")


# (rule conditions, upn, applies) -- OR within a condition, AND across, exceptions OR.
RULE_LOGIC: list[tuple[dict[str, Any], str, bool]] = [
    ({"sent_to": ["alice@contoso.com", "carl@fabrikam.com"]}, "carl@fabrikam.com", True),
    ({"sent_to": ["alice@contoso.com"]}, "ALICE@contoso.COM", True),
    ({"sent_to": ["alice@contoso.com"]}, "bob@contoso.com", False),
    ({"sent_to_member_of": ["Finance"]}, "bob@contoso.com", True),
    ({"sent_to_member_of": ["finance", "Ops"]}, "ed@contoso.com", True),
    ({"sent_to_member_of": ["Finance"]}, "ed@contoso.com", False),
    ({"recipient_domain_is": ["contoso.com", "fabrikam.com"]}, "x@fabrikam.com", True),
    ({"recipient_domain_is": ["contoso.com"]}, "x@sub.contoso.com", False),
    (
        {"sent_to_member_of": ["Finance"], "recipient_domain_is": ["contoso.com"]},
        "alice@contoso.com",
        True,
    ),
    (
        {"sent_to": ["carl@fabrikam.com"], "recipient_domain_is": ["contoso.com"]},
        "carl@fabrikam.com",
        False,
    ),
    (
        {"recipient_domain_is": ["contoso.com"], "except_if_sent_to": ["alice@contoso.com"]},
        "alice@contoso.com",
        False,
    ),
    (
        {"recipient_domain_is": ["contoso.com"], "except_if_sent_to_member_of": ["Ops"]},
        "ed@contoso.com",
        False,
    ),
    (
        {"recipient_domain_is": ["contoso.com"], "except_if_recipient_domain_is": ["fabrikam.com"]},
        "x@contoso.com",
        True,
    ),
    (
        {"sent_to": ["carl@fabrikam.com"], "except_if_recipient_domain_is": ["fabrikam.com"]},
        "carl@fabrikam.com",
        False,
    ),
]


@pytest.mark.parametrize(("conditions", "upn", "applies"), RULE_LOGIC)
def test_rule_logic(conditions: dict[str, Any], upn: str, applies: bool) -> None:
    """Rule conditions combine exactly as Defender's: OR within, AND across, exceptions OR."""
    ps = _set([{"name": "R", "policy": "P", "priority": 0, **conditions}])
    resolution = ps.resolve(upn)
    assert (resolution.rule == "R") is applies
    assert (resolution.policy.name == "P") is applies


def test_precedence_strict_standard_custom_builtin() -> None:
    """Strict beats Standard beats custom rules (by priority) beats Built-in protection."""
    ps = _set(
        [
            {"name": "Low", "policy": "L", "priority": 5, "recipient_domain_is": ["contoso.com"]},
            {"name": "High", "policy": "H", "priority": 2, "sent_to_member_of": ["Finance"]},
        ],
        presets={
            "strict": {"sent_to": ["alice@contoso.com"]},
            "standard": {"sent_to": ["alice@contoso.com", "bob@contoso.com"]},
        },
    )
    assert ps.resolve("alice@contoso.com").policy is STRICT
    assert ps.resolve("bob@contoso.com").policy is STANDARD
    assert ps.resolve("ed@contoso.com").policy.name == "L"
    assert ps.resolve("x@fabrikam.com").policy is BUILT_IN_PROTECTION
    assert [r.name for r in ps.rules] == ["High", "Low"]


def test_priority_order_not_file_order() -> None:
    """Among custom rules the lowest priority number wins whatever the file order."""
    ps = _set(
        [
            {
                "name": "Second",
                "policy": "B",
                "priority": 1,
                "recipient_domain_is": ["contoso.com"],
            },
            {"name": "First", "policy": "A", "priority": 0, "sent_to_member_of": ["Finance"]},
        ]
    )
    assert ps.resolve("alice@contoso.com").rule == "First"


REASONS: list[tuple[str | None, str]] = [
    (
        "alice@contoso.com",
        "rule 'Finance' (priority 1): sent to member of Finance"
        " and recipient domain is contoso.com",
    ),
    ("ceo@contoso.com", "Strict preset: sent to ceo@contoso.com"),
    ("x@fabrikam.com", "no rule matched: Built-in protection applies"),
    (None, "no rule matched: Built-in protection applies (unknown user)"),
    ("", "no rule matched: Built-in protection applies (unknown user)"),
]


@pytest.mark.parametrize(("upn", "reason"), REASONS)
def test_reasons_are_readable(upn: str | None, reason: str) -> None:
    """The resolution says which rule applied and why, or that Built-in protection applies."""
    ps = _set(
        [
            {
                "name": "Finance",
                "policy": "F",
                "priority": 1,
                "SentToMemberOf": ["finance"],
                "RecipientDomainIs": ["contoso.com"],
            }
        ],
        presets={"strict": {"sent_to": ["ceo@contoso.com"]}},
    )
    assert ps.resolve(upn).reason == reason


def test_disabled_rules_and_presets_are_skipped() -> None:
    """A disabled rule or preset scope never applies."""
    ps = _set(
        [{"name": "R", "policy": "P", "priority": 0, "enabled": False, "sent_to": ["a@b.com"]}],
        presets={"strict": {"enabled": False, "all_recipients": True}},
    )
    assert ps.resolve("a@b.com").policy is BUILT_IN_PROTECTION


def test_preset_for_all_recipients() -> None:
    """A preset scope with all_recipients applies to every known user."""
    ps = parse_policies({"presets": {"standard": {"AllRecipients": True}}})
    assert ps.resolve("anyone@anywhere.org").policy is STANDARD
    assert ps.resolve(None).policy is BUILT_IN_PROTECTION


def test_defaults_without_a_file() -> None:
    """With no policy file everyone gets Built-in protection."""
    ps = load_policies(None)
    assert ps.resolve("alice@contoso.com").policy is BUILT_IN_PROTECTION
    assert ps.policy("Strict preset") is STRICT


P1 = [{"name": "P"}]
R0 = {"name": "R", "policy": "P", "priority": 0}
TO = {"sent_to": ["a@b.com"]}

BAD_SETS: list[tuple[dict[str, Any], str]] = [
    ({"rules": [R0]}, "rules[0]: at least one condition"),
    (
        {"policies": P1, "rules": [{**R0, **TO, "policy": "Q"}]},
        "rules[0] (R).policy: no policy named 'Q'",
    ),
    (
        {
            "policies": [*P1, {"name": "Q"}],
            "rules": [{**R0, **TO}, {**R0, **TO, "name": "S", "policy": "Q"}],
        },
        "priorities are unique",
    ),
    (
        {"policies": P1, "rules": [{**R0, **TO}, {**R0, **TO, "name": "S", "priority": 1}]},
        "a policy has one rule",
    ),
    ({"policies": [{"name": "P"}, {"name": "P"}]}, "used twice"),
    ({"policies": [{"name": "Strict preset"}]}, "name of a preset"),
    (
        {"policies": P1, "rules": [{**R0, "sent_to_member_of": ["Nobody"]}]},
        "no group named 'Nobody'",
    ),
    ({"policies": P1, "rules": [{**R0, **TO, "priority": -1}]}, "rules[0].priority"),
    ({"rules": [{**R0, "sent_to": ["not-a-upn"]}]}, "rules[0].sent_to: not-a-upn"),
    ({"rules": [{**R0, "RecipientDomainIs": ["bad domain"]}]}, "rules[0].RecipientDomainIs"),
    ({"groups": {"G": ["nope"]}}, "groups.G"),
    ({"groups": {"G": "a@b.com"}}, "groups.G"),
    ({"policies": [{"name": "P", "AllowClickThrough": "maybe"}]}, "policies[0].AllowClickThrough"),
    (
        {"policies": [{"name": "P", "allow_click_through": "maybe"}]},
        "policies[0].allow_click_through",
    ),
    ({"policys": []}, "policys: Extra inputs"),
    ({"presets": {"strict": {}}}, "presets.strict: at least one condition"),
    ({"presets": {"lenient": {"all_recipients": True}}}, "presets.lenient"),
    ({"rules": [{**R0, "all_recipients": True}]}, "all_recipients is for presets"),
]


@pytest.mark.parametrize(("data", "message"), BAD_SETS)
def test_invalid_policy_sets_raise_policy_error(data: dict[str, Any], message: str) -> None:
    """Broken files raise PolicyError naming the file and the offending key."""
    with pytest.raises(PolicyError) as caught:
        parse_policies(data, "pol.yaml")
    text = str(caught.value)
    assert text.startswith("pol.yaml: ")
    assert message.replace("not-a-upn", "'not-a-upn'") in text or message in text


def test_example_file_loads_and_resolves() -> None:
    """The documented example.yaml loads and resolves its sample users as described."""
    ps = load_policies(EXAMPLE)
    assert ps.resolve("ceo@contoso.com").policy is STRICT
    alice = ps.resolve("alice@contoso.com")
    assert alice.policy.name == "Finance links" and alice.rule == "Finance"
    assert alice.policy.branding is not None and alice.policy.scan_wait_seconds == 10
    assert ps.resolve("bob@contoso.com").rule == "Contoso staff"
    assert ps.resolve("dave@contoso.com").policy is BUILT_IN_PROTECTION
    assert ps.resolve("eve@fabrikam.com").policy is BUILT_IN_PROTECTION


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("policies: [\n  - name: x\n    bad: [", "not valid YAML (line"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("policies:\n  - name: P\n    TrackClicks: sometimes\n", "policies[0].TrackClicks"),
    ],
)
def test_loader_errors_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    """YAML and validation errors from a file name the file and the key or line."""
    path = tmp_path / "policies.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PolicyError, match=r"policies\.yaml: ") as caught:
        load_policies(path)
    assert message in str(caught.value)


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    """A missing policy file raises PolicyError, not OSError."""
    with pytest.raises(PolicyError, match="cannot read"):
        load_policies(tmp_path / "absent.yaml")


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    """An empty policy file means defaults only."""
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_policies(path).resolve("a@b.com").policy is BUILT_IN_PROTECTION


def test_resolution_is_fast_and_cached() -> None:
    """Resolving is cheap for many rules, and repeated UPNs come from the cache."""
    rules = [
        {"name": f"R{i}", "policy": f"P{i}", "priority": i, "sent_to": [f"user{i}@contoso.com"]}
        for i in range(200)
    ]
    ps = parse_policies({"policies": [{"name": f"P{i}"} for i in range(200)], "rules": rules})
    first = ps.resolve("user199@contoso.com")
    assert first.rule == "R199"
    assert ps.resolve("USER199@contoso.com") is first
    start = time.perf_counter()
    for _ in range(10_000):
        ps.resolve("user199@contoso.com")
    assert (time.perf_counter() - start) / 10_000 < 0.00002


def _cli(argv: list[str]) -> int:
    from safelinks.cli import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    result = int(exited.value.code or 0)
    return result


def test_cli_show_prints_policy_rule_and_reason(capsys: pytest.CaptureFixture[str]) -> None:
    """`policy show` prints the effective policy, the matching rule, why, and its settings."""
    rc = _cli(["policy", "show", "--user", "alice@contoso.com", "--file", str(EXAMPLE)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Policy:  Finance links" in out
    assert "Why:     rule 'Finance' (priority 0): sent to member of Finance" in out
    assert any(line.split() == ["AllowClickThrough", "off"] for line in out.splitlines())
    assert any(line.split() == ["ScanWaitSeconds", "10"] for line in out.splitlines())


def test_cli_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    """`policy show --json` prints the resolution and Defender-named settings as JSON."""
    import json

    assert _cli(["policy", "show", "--user", "nobody@fabrikam.com", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["policy"] == "Built-in protection" and doc["rule"] is None
    assert doc["reason"] == "no rule matched: Built-in protection applies"
    assert doc["settings"]["AllowClickThrough"] is True


def test_cli_show_bad_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unusable policy file gives exit status 2 and the PolicyError on stderr."""
    path = tmp_path / "bad.yaml"
    path.write_text("policies:\n  - name: P\n    ScanUrls: perhaps\n", encoding="utf-8")
    assert _cli(["policy", "show", "--user", "a@b.com", "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("safelinks: error: --file: ") and "policies[0].ScanUrls" in err


def test_cli_show_requires_user() -> None:
    """`policy show` without --user is a usage error."""
    assert _cli(["policy", "show"]) == 2


def test_cli_presets_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    """`policy presets` shows the three presets as columns with Defender's values."""
    assert _cli(["policy", "presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("  ")[0] == "Setting"
    assert "Built-in protection" in lines[0] and "Strict preset" in lines[0]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert rows["AllowClickThrough"] == ["on", "off", "off"]
    assert rows["EnableForInternalSenders"] == ["off", "on", "on"]
