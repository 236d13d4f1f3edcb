"""The Teams bot: sees messages where it is installed, wraps their links, keeps the messages as evidence.

Every botbuilder import lives in ``bot.adapter``; the rest of the package works on the types of
``bot.activity``, so the Bot Framework SDK can be replaced without touching the handling.
"""
