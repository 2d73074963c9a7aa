from otter.test_files import test_case

OK_FORMAT = False

name = "q8"
points = None

@test_case(points=None, hidden=False)
def test_report():
    import json
    import pathlib
    import re
    path = pathlib.Path('mnist_homework.ipynb')
    assert path.is_file(), "cannot find mnist_homework.ipynb in this folder: keep the notebook's name, and save it (Ctrl+S) before checking"
    cells = json.loads(path.read_text(encoding='utf-8'))['cells']
    lines = [line for cell in cells if cell['cell_type'] == 'markdown' for line in ''.join(cell['source']).splitlines()]
    sections = {'Architectures': (('architectures', 'architecture', 'models', 'methods', 'methodology', 'model design', 'network design', 'model description', 'model overview', 'architektur', 'architekturen', 'modelle', 'netzwerke', 'aufbau', 'methoden', 'methodik', 'arquitectura', 'arquitecturas', 'modelo', 'redes', 'método', 'metodología', 'modèle', 'méthode', 'méthodologie', 'architettura', 'architetture', 'modelli', 'metodi', 'arquitetura', 'arquiteturas', 'metodologia'), 60), 'Results': (('results', 'comparison', 'evaluation', 'experiments', 'performance', 'accuracy', 'accuracies', 'benchmark', 'scores', 'ergebnis', 'ergebnisse', 'vergleich', 'auswertung', 'evaluierung', 'leistung', 'resultado', 'resultados', 'comparación', 'comparativa', 'evaluación', 'rendimiento', 'desempeño', 'résultat', 'comparaison', 'évaluation', 'risultati', 'confronto', 'valutazione', 'comparação', 'avaliação'), 30), 'Insights': (('insights', 'discussion', 'findings', 'conclusion', 'analysis', 'observations', 'takeaways', 'lessons learned', 'interpretation', 'reflection', 'what i learned', 'remarks', 'erkenntnis', 'erkenntnisse', 'fazit', 'schlussfolgerung', 'schlussfolgerungen', 'diskussion', 'analyse', 'beobachtungen', 'auswertung der ergebnisse', 'conclusión', 'conclusiones', 'discusión', 'análisis', 'observaciones', 'interpretación', 'reflexión', 'reflexiones', 'lecciones aprendidas', 'aprendizajes', 'hallazgos', 'enseignements', 'conclusioni', 'discussione', 'osservazioni', 'conclusões', 'discussão', 'observações'), 80)}
    headings = [(i, line.lstrip('#').strip().lower()) for i, line in enumerate(lines) if re.match('^\\s{0,3}#{1,6}\\s', line)]
    bodies = {}
    for title, (aliases, min_words) in sections.items():
        found = [k for k, (i, text) in enumerate(headings) if any((alias in text for alias in aliases))]
        assert found, f"the report has no '{title}' section: start it with a Markdown heading line such as '## {title}', and save the notebook before checking"
        start = headings[found[-1]][0] + 1
        end = headings[found[-1] + 1][0] if found[-1] + 1 < len(headings) else len(lines)
        bodies[title] = lines[start:end]
        words = len(re.findall("[A-Za-z0-9][\\w.%'-]*", ' '.join(bodies[title])))
        assert words >= min_words, f"the '{title}' section has {words} words; write at least {min_words}"
    rows = [line for line in bodies['Results'] if line.strip().startswith('|')]
    assert len(rows) >= 3, 'the Results section needs a Markdown table: | Model | Test accuracy | Parameters | Training time (s) |, with one row per architecture'
    table = '\n'.join(rows).lower()
    for model in ('MLP', 'CNN', 'SimpleRNN', 'LSTM', 'GRU'):
        assert re.search(f'\\|\\s*{model.lower()}\\b', table), f'the Results table has no row for {model}; add one with its test accuracy, parameter count and training time'

