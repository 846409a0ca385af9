"""The HTTP surface: the aiohttp app, route table, guard, ASGI bridge."""
