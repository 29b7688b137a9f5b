"""Tiny seeded HF models with in-code WordLevel tokenizers: a BERT-like encoder and a Llama-like
causal LM whose tokenizer adds a BOS, so pooling, padding and BOS handling can be checked
against a per-text reference in milliseconds."""

from __future__ import annotations

import pytest
import torch

WORDS = ("a cat dog sits on the mat red blue car kitchen knife museum painting hospital "
         "bed swim suit war history film night day big small old new").split()


def make_tokenizer(template: str):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "<bos>": 4}
    vocab.update({w: i + 5 for i, w in enumerate(WORDS)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = [(s, vocab[s]) for s in ("[CLS]", "[SEP]", "<bos>")]
    tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=specials)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", bos_token="<bos>",
                                   model_max_length=64)


def make_bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=5 + len(WORDS), hidden_size=16, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                     pad_token_id=0)
    return BertModel(cfg).eval(), make_tokenizer("[CLS] $A [SEP]")


def make_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=5 + len(WORDS), hidden_size=16, intermediate_size=32,
                      num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=64, bos_token_id=4, eos_token_id=3, pad_token_id=0)
    return LlamaForCausalLM(cfg).eval(), make_tokenizer("<bos> $A")


TEXTS = ["a cat sits on the mat", "red car", "the old museum painting on the big wall night",
         "dog", "a small kitchen knife", "war history film", "hospital bed at night", ""]


@pytest.fixture
def tiny_bert():
    return make_bert()


@pytest.fixture
def tiny_llama():
    return make_llama()


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory):
    """Saved tiny models, for the get_encoder(path) route (lazy loading from disk)."""
    root = tmp_path_factory.mktemp("tiny_models")
    out = {}
    for name, make in (("bert", make_bert), ("llama", make_llama)):
        model, tok = make()
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
        out[name] = root / name
    return out


class ForwardCounter:
    """Counts forward calls of a module (to prove cache hits never run the model)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        self.handle = module.register_forward_pre_hook(self._hook)

    def _hook(self, *_args) -> None:
        self.calls += 1


@pytest.fixture
def count_forwards():
    """Attach a `ForwardCounter` to a module; hooks are removed after the test."""
    counters: list[ForwardCounter] = []

    def attach(module: torch.nn.Module) -> ForwardCounter:
        counters.append(ForwardCounter(module))
        return counters[-1]

    yield attach
    for c in counters:
        c.handle.remove()


@pytest.fixture
def wordlevel_tokenizer():
    """The tokenizer factory: ``wordlevel_tokenizer("$A [SEP]")``."""
    return make_tokenizer


@pytest.fixture
def texts():
    return list(TEXTS)
