"""Three chat-templated text prompts that share a system prompt (generation tests: batching, sampling)."""

SYSTEM = "<|im_start|>system\nYou explain emotions from the evidence listed, citing only that.<|im_end|>\n"
TAIL = "<|im_end|>\n<|im_start|>assistant\n<think>\nObservations:\n-"
TEXTS = ["We got the keys today!!", "I miss her so much.", "The meeting moved to 3pm, room 204, bring the slides"]


def chat_prompts() -> list[str]:
    return [f"{SYSTEM}<|im_start|>user\nWords: {t}{TAIL}" for t in TEXTS]
