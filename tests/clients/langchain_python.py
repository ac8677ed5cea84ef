# LangChain's ChatOllama with the key in the client's headers.
import json
import os
import sys

from langchain_ollama import ChatOllama

headers = {"Authorization": "Bearer " + os.environ["KEY"]}
chat = ChatOllama(model=sys.argv[1], base_url=os.environ["OLLAMA_URL"], client_kwargs={"headers": headers})
models = [m.model for m in chat._client.list().models]
whole = chat.invoke("Why is the sky blue?").content
tokens = [c.content for c in chat.stream("Why is the sky blue?") if c.content]
print(json.dumps({"models": models, "whole": whole, "tokens": tokens}))
