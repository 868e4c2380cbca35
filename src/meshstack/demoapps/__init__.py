"""Real HTTP demo services the local stack runs as pods (and self-tests run alone).

* :mod:`meshstack.demoapps.emojivoto`: emojivoto's ``web``, ``emoji``, ``voting`` and
  ``vote-bot``, with the real app's routes, call graph and deliberate :poop: failure;
* :mod:`meshstack.demoapps.webdemo`: the single-service web demo.

Each is started as ``python -m meshstack.demoapps.<...>`` (the image map in
``meshstack/twin/images/apps.yaml`` names which), listens where
:func:`meshstack.demoapps._http.listen_port` says, and logs one access line per
request on stdout.
"""
