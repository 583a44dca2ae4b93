"""Domain-adaptive pre-training of an encoder (continued masked-LM training) on the training corpora's text.

    python pretrain_mlm.py --output_dir runs/minilm-dapt --max_seconds 3600
    accelerate launch pretrain_mlm.py --output_dir runs/minilm-dapt --max_steps 2000 --whole_word_mask
    python train.py --recipe single --corpora BioRED --encoder runs/minilm-dapt --output_dir runs/biored-dapt

See aioner/mlm_data.py for what text is used (train splits only, test documents excluded) and
aioner/mlm.py for the options and what the output folder holds (encoder + MLM head, tokenizer,
model card).
"""

import sys

from aioner.mlm import main

if __name__ == "__main__":
    sys.exit(main())
