# The official Python client, configured only through the environment, as an
# application would be: OLLAMA_HOST and OLLAMA_API_KEY. Prints what it got.
import json
import sys

import ollama

client = ollama.Client()
models = [m.model for m in client.list().models]
tokens = [p.message.content for p in client.chat(
    model=sys.argv[1], messages=[{"role": "user", "content": "Why is the sky blue?"}], stream=True)]
try:
    ollama.Client(headers={"Authorization": "Bearer osk_wrong"}).list()
    wrong = "accepted"
except ollama.ResponseError as e:
    wrong = e.status_code
print(json.dumps({"models": models, "tokens": [t for t in tokens if t], "wrong_key": wrong}))
