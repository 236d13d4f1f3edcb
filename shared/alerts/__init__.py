"""The alert engine: rules over clicks and verdict changes, alerts, incidents and their notifications."""
