"""Safe Links policies: settings, presets, rules, and resolving a user to their policy."""

from shared.policy.loader import PolicyFile, configured_policies, load_policies, parse_policies
from shared.policy.model import Branding, PolicyError, PolicyFileError, ReplyMode, SafeLinksPolicy
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
    "PolicyFileError",
    "PolicySet",
    "PresetScope",
    "ReplyMode",
    "Resolution",
    "SafeLinksPolicy",
    "SafeLinksRule",
    "configured_policies",
    "load_policies",
    "parse_policies",
]
