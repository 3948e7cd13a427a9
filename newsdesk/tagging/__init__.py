"""Region and topic tagging: gazetteer and lexicon automata, salience scoring, explanations."""
