"""The affect knowledge wing: FACS Action Units, EMFACS prototypes and prosody cues, label
taxonomies and synonyms: published facts as constants, no model code.
"""
