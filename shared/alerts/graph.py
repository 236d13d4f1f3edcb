"""Alerts and incidents in the shape of Microsoft Graph security ``alert`` (v2) and ``incident``.

Evidence follows Graph's ``alertEvidence`` types: ``urlEvidence``, ``userEvidence`` (with a
``userAccount``), ``teamsMessageEvidence``, ``analyzedMessageEvidence`` for e-mail clicks, and
``ipEvidence``. The click itself (UrlClickEvents columns) and the verdict behind the alert travel in
``additionalData``, since Graph has no evidence type for them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.alerts.model import Alert, Incident, iso
from shared.clicks import Click

_NS = "#microsoft.graph.security."
# MITRE ATT&CK: phishing link (T1566.002), user opening a malicious link (T1204.001).
MITRE_TECHNIQUES = ("T1566.002", "T1204.001")
PRODUCT = "teams-safelinks"


def _base(
    kind: str,
    created: datetime,
    *,
    verdict: str = "unknown",
    roles: tuple[str, ...] = (),
    detailed: tuple[str, ...] = (),
    remediation: str = "none",
) -> dict[str, Any]:
    return {
        "@odata.type": _NS + kind,
        "createdDateTime": iso(created),
        "verdict": verdict,
        "remediationStatus": remediation,
        "remediationStatusDetails": None,
        "roles": list(roles),
        "detailedRoles": list(detailed),
        "tags": [],
    }


def evidence_verdict(verdict: str) -> str:
    return {"malicious": "malicious", "suspicious": "suspicious", "clean": "noThreatsFound"}.get(verdict, "unknown")


def user_account(upn: str | None, object_id: str | None, display_name: str | None) -> dict[str, Any]:
    name, _, domain = (upn or "").partition("@")
    return {
        "accountName": name or None,
        "azureAdUserId": object_id,
        "activeDirectoryObjectGuid": None,
        "displayName": display_name or upn,
        "domainName": domain or None,
        "userPrincipalName": upn,
        "userSid": None,
    }


def teams_message_from_click(click: Click) -> dict[str, Any]:
    """What the click's own Teams reference says about the message, when the bot kept no copy."""
    return {
        "messageId": click.message_id,
        "threadId": click.conversation_id,
        "channelId": click.channel_id,
        "groupId": click.team_id,
        "owningTenantId": click.tenant_id,
        "senderFromAddress": {"displayName": None, "emailAddress": click.sender} if click.sender else None,
        "threadType": "Topic" if click.channel_id else "Chat",
        "urls": [click.url],
    }


def build_evidence(
    click: Click,
    *,
    verdict: str,
    created: datetime,
    message: dict[str, Any] | None,
    display_name: str | None,
) -> list[dict[str, Any]]:
    """Graph evidence objects for an alert raised on ``click``."""
    blocked = not click.is_clicked_through and click.action_type.value.startswith("ClickBlocked")
    found = [
        {
            **_base(
                "urlEvidence",
                created,
                verdict=evidence_verdict(verdict),
                roles=("destination",),
                detailed=("Clicked URL",),
                remediation="blocked" if blocked else "none",
            ),
            "url": click.url,
        },
        {
            **_base("userEvidence", created, roles=("attacked",), detailed=("User who clicked",)),
            "userAccount": user_account(click.account_upn, click.account_object_id, display_name),
            "stream": None,
        },
    ]
    if click.workload.value == "Teams":
        fields = {**teams_message_from_click(click), **(message or {})}
        urls = fields.get("urls") or [click.url]
        fields["urls"] = [u if isinstance(u, dict) else {"@odata.type": _NS + "urlEvidence", "url": u} for u in urls]
        found.append(
            {
                **_base(
                    "teamsMessageEvidence",
                    created,
                    roles=("source",),
                    detailed=("Teams message that held the link",),
                ),
                **fields,
            }
        )
    elif click.network_message_id:
        found.append(
            {
                **_base(
                    "analyzedMessageEvidence",
                    created,
                    roles=("source",),
                    detailed=("E-mail message that held the link",),
                ),
                "networkMessageId": click.network_message_id,
                "recipientEmailAddress": click.recipient or click.account_upn,
                "p2Sender": {"emailAddress": click.sender} if click.sender else None,
                "urls": [click.url],
                "urlCount": 1,
            }
        )
    if click.ip_address:
        found.append(
            {
                **_base("ipEvidence", created, roles=("source",), detailed=("Address of the click",)),
                "ipAddress": click.ip_address,
            }
        )
    return found


def alert_json(alert: Alert, *, public_url: str = "", tenant_id: str | None = None) -> dict[str, Any]:
    """One alert as Graph ``microsoft.graph.security.alert`` (v2)."""
    details = alert.details
    verdict = details.get("verdict", {})
    return {
        "@odata.type": _NS + "alert",
        "id": str(alert.id),
        "providerAlertId": alert.key,
        "incidentId": str(alert.incident_id) if alert.incident_id is not None else None,
        "status": alert.status.value,
        "severity": alert.severity.value,
        "classification": alert.classification.value,
        "determination": alert.determination,
        "serviceSource": "unknown",
        "detectionSource": "customDetection",
        "productName": PRODUCT,
        "detectorId": alert.rule_id,
        "alertPolicyId": alert.rule_id,
        "tenantId": tenant_id or details.get("click", {}).get("TenantId") or None,
        "title": alert.title,
        "description": alert.description,
        "recommendedActions": alert.recommended_actions,
        "category": alert.category,
        "assignedTo": alert.assigned_to,
        "alertWebUrl": f"{public_url}/api/v1/alerts/{alert.id}" if public_url else None,
        "incidentWebUrl": (
            f"{public_url}/api/v1/incidents/{alert.incident_id}"
            if public_url and alert.incident_id is not None
            else None
        ),
        "actorDisplayName": alert.sender,
        "threatDisplayName": ", ".join(verdict.get("threatTypes", [])) or None,
        "threatFamilyName": None,
        "mitreTechniques": list(MITRE_TECHNIQUES),
        "createdDateTime": iso(alert.created_at),
        "lastUpdateDateTime": iso(alert.updated_at),
        "resolvedDateTime": iso(alert.resolved_at),
        "firstActivityDateTime": iso(alert.first_activity),
        "lastActivityDateTime": iso(alert.last_activity),
        "comments": [c.to_json() for c in alert.comments],
        "evidence": alert.evidence,
        "systemTags": [alert.workload],
        "investigationState": "unknown",
        "additionalData": {
            "workload": alert.workload,
            "eventCount": alert.event_count,
            "click": details.get("click"),
            "reportIds": details.get("report_ids", [alert.report_id]),
            "verdict": verdict,
            "notes": details.get("notes", []),
        },
    }


def incident_json(
    incident: Incident,
    alerts: list[Alert] | None = None,
    *,
    public_url: str = "",
    tenant_id: str | None = None,
) -> dict[str, Any]:
    """One incident as Graph ``microsoft.graph.security.incident`` (``$expand=alerts`` when given)."""
    body: dict[str, Any] = {
        "@odata.type": _NS + "incident",
        "id": str(incident.id),
        "displayName": incident.title,
        "description": None,
        "summary": None,
        "severity": incident.severity.value,
        "status": incident.status.value,
        "classification": incident.classification.value,
        "determination": incident.determination,
        "assignedTo": incident.assigned_to,
        "tenantId": tenant_id,
        "incidentWebUrl": f"{public_url}/api/v1/incidents/{incident.id}" if public_url else None,
        "createdDateTime": iso(incident.created_at),
        "lastUpdateDateTime": iso(incident.updated_at),
        "resolvingComment": incident.resolving_comment or None,
        "redirectIncidentId": None,
        "customTags": [],
        "systemTags": [],
        "comments": [c.to_json() for c in incident.comments],
        "additionalData": {
            "alertCount": incident.alert_count,
            "firstActivityDateTime": iso(incident.first_activity),
            "lastActivityDateTime": iso(incident.last_activity),
        },
    }
    if alerts is not None:
        body["alerts"] = [alert_json(a, public_url=public_url, tenant_id=tenant_id) for a in alerts]
    return body
