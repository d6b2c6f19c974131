"""A conversation with asyncio: a session, an answer, a second one stopped after its first
words, and the first replayed by a client that holds a ticket instead of the API key.

    python conversation.py
"""

import asyncio
import os

from chatstream_client import AsyncChatstreamClient, EndEvent, TokenEvent


async def main() -> None:
    url = os.environ.get("CHATSTREAM_URL", "http://127.0.0.1:8080")
    async with AsyncChatstreamClient(url, api_key=os.environ["CHATSTREAM_API_KEY"]) as client:
        session = await client.create_session("Trip")

        first = client.send_message(session.id, "What should I see in Lisbon?")
        async for event in first:
            match event:
                case TokenEvent(content=text):
                    print(text, end="", flush=True)
                case EndEvent(usage=usage):
                    print(f"\n({usage.tokens} tokens)")

        # Stop an answer: the stream goes on to an end whose finish_reason is "cancelled"
        # (or "stop", if the answer was complete before the cancel arrived).
        second = client.send_message(session.id, "And after that?")
        async for event in second:
            if isinstance(event, TokenEvent):
                await second.cancel()
            elif isinstance(event, EndEvent):
                print("second answer:", event.finish_reason)

        # A ticket opens one job's stream without the API key, for a process or a page
        # that must not hold it; resume() replays the job from its first event.
        assert first.job_id is not None
        ticket = await client.create_ticket(first.job_id)
        async with AsyncChatstreamClient(url) as keyless:
            async for event in keyless.resume(first.job_id, ticket=ticket.ticket):
                if isinstance(event, EndEvent):
                    print("replayed:", event.content)

        for message in await client.messages(session.id):
            print(f"{message.role}: {message.status}")


asyncio.run(main())
