"""The readers: who they are, who may be sent to, who left; CSV in and out; the signed
tokens of their unsubscribe links."""
