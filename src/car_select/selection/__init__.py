"""Choosing the records: apply.py runs the selection step of a run (near-duplicates, min_score, then
a strategy); car.py is the paper's rule and its budgets, qd.py quality-diversity (QDIT), deita.py
score first with a similarity filter, near_duplicates.py the near-duplicate filter, knn.py the faiss
cosine neighbours they share, result.py what every strategy returns; baselines.py describes a
selection beside random and naive subsets of its size."""
