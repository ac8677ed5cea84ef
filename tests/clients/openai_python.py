# The official OpenAI SDK against Ollama's OpenAI-compatible API: a base URL
# and an API key, nothing else.
import json
import os
import sys

import openai

client = openai.OpenAI(base_url=os.environ["OLLAMA_URL"] + "/v1", api_key=os.environ["KEY"])
models = [m.id for m in client.models.list()]
messages = [{"role": "user", "content": "Why is the sky blue?"}]
whole = client.chat.completions.create(model=sys.argv[1], messages=messages).choices[0].message.content
stream = client.chat.completions.create(model=sys.argv[1], messages=messages, stream=True)
tokens = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
try:
    openai.OpenAI(base_url=os.environ["OLLAMA_URL"] + "/v1", api_key="osk_wrong").models.list()
    wrong = "accepted"
except openai.AuthenticationError as e:
    wrong = e.status_code
print(json.dumps({"models": models, "whole": whole, "tokens": tokens, "wrong_key": wrong}))
