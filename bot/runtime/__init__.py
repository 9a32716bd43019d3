"""The running bot: the discord.py client, its command tree, and the Discord endpoint seam.

`client` is PaperBot (resources injected, cogs loaded from a list); `tree` answers every
command error in one place; `discord_api` points discord.py at a stand-in for tests;
`forget` drops what belonged to servers, channels and roles that went away."""
