"""Corpus readers and writers (PubTator, BioC, CoNLL) over one document model with exact character offsets."""
