"""Ask a question, print the answer as it streams, then the sources it cites.

python ask.py "How does resuming work?" [project]
"""

import os
import sys

from chatstream_client import ChatstreamClient, EndEvent, TokenEvent

question, project = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
url = os.environ.get("CHATSTREAM_URL", "http://127.0.0.1:8080")

with ChatstreamClient(url, api_key=os.environ["CHATSTREAM_API_KEY"]) as client:
    stream = client.chat(question, project=project)
    for event in stream:
        if isinstance(event, TokenEvent):
            print(event.content, end="", flush=True)
        elif isinstance(event, EndEvent):
            print()
            for cited in event.citations:
                print(f"[{cited.id}] {cited.document}", *cited.quotes, sep="\n    ")
    print("session:", stream.session_id)
