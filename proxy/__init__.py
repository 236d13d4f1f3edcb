"""The aiohttp click-time proxy."""
