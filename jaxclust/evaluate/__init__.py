"""Evaluating a trained run: the report (metrics, figures), linear evaluation, TensorBoard events.

    python launch/evaluate.py --workdir=DIR [--checkpoint=EPOCH] [--linear] [--report.key=VALUE ...]

Modules (imported lazily, so the training loop does not pull in matplotlib or scikit-learn's t-SNE):

  analysis.py     numpy functions on features and labels: kNN accuracy, Hungarian-matched confusion
  linear.py       linear evaluation of frozen features (ProPos Sec. 5.3.2, Table 5 protocol)
  figures.py      the report's PNG figures (matplotlib)
  report.py       the command behind launch/evaluate.py: restore or import a network, embed,
                  cluster, score, plot, write WORKDIR/report/report.json
  tensorboard.py  metrics.jsonl as TensorBoard event files (tensorboardX), and their reader
"""
