"""Language-model sanity checks of a loaded backbone: tokenizers, mean NLL, greedy decoding.

HAR never reads text; these exist only to show that a checkpoint was converted right (a real
model predicts real text, a broken conversion does not). ``launch/backbone.py`` and the weight
tests use them; nothing on the training path imports this package.
"""
