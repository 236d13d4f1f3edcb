"""Safe Links policies: settings, presets, rules, and resolving a user to their policy."""

from shared.policy.loader import PolicyFile, load_policies, parse_policies
from shared.policy.model import Branding, PolicyError, ReplyMode, SafeLinksPolicy
from shared.policy.presets import BUILT_IN_PROTECTION, PRESETS, STANDARD, STRICT
from shared.policy.rules import PolicySet, PresetScope, Resolution, SafeLinksRule

__all__ = [
    "BUILT_IN_PROTECTION",
    "PRESETS",
    "STANDARD",
    "STRICT",
    "Branding",
    "PolicyError",
    "PolicyFile",
    "PolicySet",
    "PresetScope",
    "ReplyMode",
    "Resolution",
    "SafeLinksPolicy",
    "SafeLinksRule",
    "load_policies",
    "parse_policies",
]
