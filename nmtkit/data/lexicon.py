"""English-German lexicon for the synthetic corpus (`nmtkit.data.synthetic`).

Word lists only; how the entries inflect is in `nmtkit.data.morphology`. Each table below holds
one entry per line, fields separated by "|", with a header comment that names the columns. To
add a word, add a line: the generator picks it up and only combines it where its kind fits (a
verb lists the noun kinds it takes as subject and object; a noun lists the prepositions it takes
as a place). Then run tests/test_synthetic.py, which checks every entry's German forms against
the agreement rules, and bump `GENERATOR_VERSION` in synthetic.py.

Noun kinds: P person, A animal, T thing, F food, D drink, R text, V vehicle, L place, E event.
Noun tags: place prepositions i (in, aus), a (auf), u (unter), n (neben, hinter, vor, zwischen),
w (an), j (auf + accusative: "onto"), z (zu), d (durch), r (um), b (über: "across");
o openable, c clothing. Persons carry m/f instead: the English pronoun (he/she, else "it").
"""

from __future__ import annotations

from typing import NamedTuple


class Noun(NamedTuple):
    en: str
    en_pl: str  # "-" for mass nouns
    de: str
    de_pl: str  # "-" for mass nouns
    gender: str  # m / f / n
    kind: str
    tags: str
    oblique: str  # singular accusative/dative: differs for weak nouns ("den Jungen")
    en_pron: str  # he / she / it

    @property
    def mass(self) -> bool:
        return self.de_pl == "-"


class Adjective(NamedTuple):
    en: str
    de: str  # predicative form
    attr: str  # stem that takes the attributive ending ("hoh" for "hoch")
    order: int  # 1 opinion, 2 size, 3 quality, 4 age, 5 colour, 6 material: both languages
    kinds: str  # noun kinds it describes


class Verb(NamedTuple):
    en: str
    en3: str  # 3rd person singular present
    en_past: str
    de: str  # infinitive without the separable prefix
    prefix: str  # separable prefix ("an" of "anrufen"), "" if none
    pres: str  # irregular present forms "du,er" or "ich,du,er", "" if regular
    past: str  # Präteritum stem ("sah", "brachte"), "" for regular weak verbs
    frames: tuple[str, ...]
    subj: str  # noun kinds allowed as subject
    obj: str  # noun kinds (upper case) or tags (lower case) allowed as object


class Adverb(NamedTuple):
    en: str
    de: str
    kind: str  # t time, f frequency, m manner, p place
    tense: str  # pres / past / both
    pos: str  # English position: "pre" (before the verb) or "end" (end of the clause)
    front: bool  # may open a sentence


class Prep(NamedTuple):
    de: str
    case: str  # case it governs in this use
    en: str
    use: str  # loc / dir / com / ben / src / time
    tag: str  # noun tag it needs (place prepositions only)


class Name(NamedTuple):
    name: str
    gender: str


class Number(NamedTuple):
    en: str
    de: str


def _rows(table: str) -> list[list[str]]:
    """Split a table into its lines' fields, skipping blank lines and comments."""
    lines = (line.strip() for line in table.splitlines())
    return [line.split("|") for line in lines if line and not line.startswith("#")]


# English | plural | German | plural | gender | kind + tags | weak oblique singular
_NOUNS = """
# persons
man|men|Mann|Männer|m|Pm
woman|women|Frau|Frauen|f|Pf
child|children|Kind|Kinder|n|P
boy|boys|Junge|Jungen|m|Pm|Jungen
girl|girls|Mädchen|Mädchen|n|Pf
baby|babies|Baby|Babys|n|P
father|fathers|Vater|Väter|m|Pm
mother|mothers|Mutter|Mütter|f|Pf
brother|brothers|Bruder|Brüder|m|Pm
sister|sisters|Schwester|Schwestern|f|Pf
son|sons|Sohn|Söhne|m|Pm
daughter|daughters|Tochter|Töchter|f|Pf
grandfather|grandfathers|Großvater|Großväter|m|Pm
grandmother|grandmothers|Großmutter|Großmütter|f|Pf
uncle|uncles|Onkel|Onkel|m|Pm
aunt|aunts|Tante|Tanten|f|Pf
gentleman|gentlemen|Herr|Herren|m|Pm|Herrn
lady|ladies|Dame|Damen|f|Pf
king|kings|König|Könige|m|Pm
queen|queens|Königin|Königinnen|f|Pf
prince|princes|Prinz|Prinzen|m|Pm|Prinzen
princess|princesses|Prinzessin|Prinzessinnen|f|Pf
teacher|teachers|Lehrer|Lehrer|m|Pm
doctor|doctors|Arzt|Ärzte|m|Pm
student|students|Student|Studenten|m|Pm|Studenten
pupil|pupils|Schüler|Schüler|m|Pm
farmer|farmers|Bauer|Bauern|m|Pm|Bauern
baker|bakers|Bäcker|Bäcker|m|Pm
cook|cooks|Koch|Köche|m|Pm
neighbour|neighbours|Nachbar|Nachbarn|m|Pm|Nachbarn
friend|friends|Freund|Freunde|m|Pm
guest|guests|Gast|Gäste|m|Pm
policeman|policemen|Polizist|Polizisten|m|Pm|Polizisten
pilot|pilots|Pilot|Piloten|m|Pm|Piloten
soldier|soldiers|Soldat|Soldaten|m|Pm|Soldaten
tourist|tourists|Tourist|Touristen|m|Pm|Touristen
customer|customers|Kunde|Kunden|m|Pm|Kunden
colleague|colleagues|Kollege|Kollegen|m|Pm|Kollegen
painter|painters|Maler|Maler|m|Pm
musician|musicians|Musiker|Musiker|m|Pm
singer|singers|Sänger|Sänger|m|Pm
hunter|hunters|Jäger|Jäger|m|Pm
fisherman|fishermen|Fischer|Fischer|m|Pm
judge|judges|Richter|Richter|m|Pm
thief|thieves|Dieb|Diebe|m|Pm
waiter|waiters|Kellner|Kellner|m|Pm
waitress|waitresses|Kellnerin|Kellnerinnen|f|Pf
nurse|nurses|Krankenschwester|Krankenschwestern|f|Pf
actor|actors|Schauspieler|Schauspieler|m|Pm
actress|actresses|Schauspielerin|Schauspielerinnen|f|Pf
witch|witches|Hexe|Hexen|f|Pf
giant|giants|Riese|Riesen|m|Pm|Riesen
hero|heroes|Held|Helden|m|Pm|Helden
president|presidents|Präsident|Präsidenten|m|Pm|Präsidenten
writer|writers|Schriftsteller|Schriftsteller|m|Pm
bride|brides|Braut|Bräute|f|Pf
# animals
dog|dogs|Hund|Hunde|m|A
cat|cats|Katze|Katzen|f|A
horse|horses|Pferd|Pferde|n|A
cow|cows|Kuh|Kühe|f|A
bird|birds|Vogel|Vögel|m|A
mouse|mice|Maus|Mäuse|f|A
fish|fish|Fisch|Fische|m|A
rabbit|rabbits|Kaninchen|Kaninchen|n|A
hare|hares|Hase|Hasen|m|A|Hasen
bear|bears|Bär|Bären|m|A|Bären
lion|lions|Löwe|Löwen|m|A|Löwen
monkey|monkeys|Affe|Affen|m|A|Affen
elephant|elephants|Elefant|Elefanten|m|A|Elefanten
fox|foxes|Fuchs|Füchse|m|A
wolf|wolves|Wolf|Wölfe|m|A
sheep|sheep|Schaf|Schafe|n|A
pig|pigs|Schwein|Schweine|n|A
goat|goats|Ziege|Ziegen|f|A
duck|ducks|Ente|Enten|f|A
goose|geese|Gans|Gänse|f|A
chicken|chickens|Huhn|Hühner|n|A
owl|owls|Eule|Eulen|f|A
snake|snakes|Schlange|Schlangen|f|A
frog|frogs|Frosch|Frösche|m|A
donkey|donkeys|Esel|Esel|m|A
tiger|tigers|Tiger|Tiger|m|A
squirrel|squirrels|Eichhörnchen|Eichhörnchen|n|A
bee|bees|Biene|Bienen|f|A
spider|spiders|Spinne|Spinnen|f|A
# things
ball|balls|Ball|Bälle|m|T
key|keys|Schlüssel|Schlüssel|m|T
hat|hats|Hut|Hüte|m|Tc
coat|coats|Mantel|Mäntel|m|Tc
jacket|jackets|Jacke|Jacken|f|Tc
shoe|shoes|Schuh|Schuhe|m|Tc
dress|dresses|Kleid|Kleider|n|Tc
shirt|shirts|Hemd|Hemden|n|Tc
scarf|scarves|Schal|Schals|m|Tc
bag|bags|Tasche|Taschen|f|To
box|boxes|Kiste|Kisten|f|Toi
basket|baskets|Korb|Körbe|m|Ti
bottle|bottles|Flasche|Flaschen|f|To
cup|cups|Tasse|Tassen|f|T
glass|glasses|Glas|Gläser|n|T
plate|plates|Teller|Teller|m|T
knife|knives|Messer|Messer|n|T
spoon|spoons|Löffel|Löffel|m|T
umbrella|umbrellas|Regenschirm|Regenschirme|m|To
phone|phones|Telefon|Telefone|n|T
computer|computers|Computer|Computer|m|T
camera|cameras|Kamera|Kameras|f|T
watch|watches|Uhr|Uhren|f|T
ring|rings|Ring|Ringe|m|T
picture|pictures|Bild|Bilder|n|T
lamp|lamps|Lampe|Lampen|f|T
flower|flowers|Blume|Blumen|f|T
stone|stones|Stein|Steine|m|T
toy|toys|Spielzeug|Spielzeuge|n|T
guitar|guitars|Gitarre|Gitarren|f|T
pen|pens|Stift|Stifte|m|T
present|presents|Geschenk|Geschenke|n|To
ticket|tickets|Fahrkarte|Fahrkarten|f|T
candle|candles|Kerze|Kerzen|f|T
mirror|mirrors|Spiegel|Spiegel|m|T
blanket|blankets|Decke|Decken|f|T
pillow|pillows|Kissen|Kissen|n|T
doll|dolls|Puppe|Puppen|f|T
kite|kites|Drachen|Drachen|m|T
ladder|ladders|Leiter|Leitern|f|T
suitcase|suitcases|Koffer|Koffer|m|To
# food
apple|apples|Apfel|Äpfel|m|F
banana|bananas|Banane|Bananen|f|F
cake|cakes|Kuchen|Kuchen|m|F
bread|-|Brot|-|n|F
pear|pears|Birne|Birnen|f|F
orange|oranges|Orange|Orangen|f|F
egg|eggs|Ei|Eier|n|F
sausage|sausages|Wurst|Würste|f|F
cheese|-|Käse|-|m|F
soup|-|Suppe|-|f|F
pizza|pizzas|Pizza|Pizzas|f|F
biscuit|biscuits|Keks|Kekse|m|F
carrot|carrots|Karotte|Karotten|f|F
potato|potatoes|Kartoffel|Kartoffeln|f|F
tomato|tomatoes|Tomate|Tomaten|f|F
rice|-|Reis|-|m|F
meat|-|Fleisch|-|n|F
chocolate|-|Schokolade|-|f|F
strawberry|strawberries|Erdbeere|Erdbeeren|f|F
cherry|cherries|Kirsche|Kirschen|f|F
salad|salads|Salat|Salate|m|F
honey|-|Honig|-|m|F
# drinks
water|-|Wasser|-|n|D
milk|-|Milch|-|f|D
coffee|-|Kaffee|-|m|D
tea|-|Tee|-|m|D
juice|-|Saft|-|m|D
wine|-|Wein|-|m|D
beer|-|Bier|-|n|D
lemonade|-|Limonade|-|f|D
# texts
book|books|Buch|Bücher|n|Ro
letter|letters|Brief|Briefe|m|Ro
newspaper|newspapers|Zeitung|Zeitungen|f|R
story|stories|Geschichte|Geschichten|f|R
magazine|magazines|Zeitschrift|Zeitschriften|f|R
poem|poems|Gedicht|Gedichte|n|R
postcard|postcards|Postkarte|Postkarten|f|R
message|messages|Nachricht|Nachrichten|f|R
note|notes|Zettel|Zettel|m|R
email|emails|E-Mail|E-Mails|f|R
recipe|recipes|Rezept|Rezepte|n|R
report|reports|Bericht|Berichte|m|R
list|lists|Liste|Listen|f|R
# vehicles
car|cars|Auto|Autos|n|Viun
bus|buses|Bus|Busse|m|Vinz
train|trains|Zug|Züge|m|Vinz
bicycle|bicycles|Fahrrad|Fahrräder|n|Van
boat|boats|Boot|Boote|n|Vin
ship|ships|Schiff|Schiffe|n|Vanz
plane|planes|Flugzeug|Flugzeuge|n|Vin
truck|trucks|Lastwagen|Lastwagen|m|Viun
taxi|taxis|Taxi|Taxis|n|Vin
tractor|tractors|Traktor|Traktoren|m|Van
# places
house|houses|Haus|Häuser|n|Lindzr
garden|gardens|Garten|Gärten|m|Lindz
park|parks|Park|Parks|m|Lidz
kitchen|kitchens|Küche|Küchen|f|Li
room|rooms|Zimmer|Zimmer|n|Li
school|schools|Schule|Schulen|f|Linz
church|churches|Kirche|Kirchen|f|Linzr
station|stations|Bahnhof|Bahnhöfe|m|Linwz
forest|forests|Wald|Wälder|m|Lidz
city|cities|Stadt|Städte|f|Lid
village|villages|Dorf|Dörfer|n|Lid
street|streets|Straße|Straßen|f|Lajb
bridge|bridges|Brücke|Brücken|f|Laujbz
river|rivers|Fluss|Flüsse|m|Liwbz
lake|lakes|See|Seen|m|Liwrbz
sea|seas|Meer|Meere|n|Liwz
mountain|mountains|Berg|Berge|m|La
hill|hills|Hügel|Hügel|m|La
field|fields|Feld|Felder|n|Lajbd
meadow|meadows|Wiese|Wiesen|f|Lajbd
beach|beaches|Strand|Strände|m|Lwz
island|islands|Insel|Inseln|f|La
table|tables|Tisch|Tische|m|Laujnwr
chair|chairs|Stuhl|Stühle|m|Laujn
bed|beds|Bett|Betten|n|Liaujn
sofa|sofas|Sofa|Sofas|n|Laujn
roof|roofs|Dach|Dächer|n|Laj
tree|trees|Baum|Bäume|m|Lunr
door|doors|Tür|Türen|f|Lonw
window|windows|Fenster|Fenster|n|Lonw
wall|walls|Mauer|Mauern|f|Lajn
shop|shops|Laden|Läden|m|Linz
restaurant|restaurants|Restaurant|Restaurants|n|Linz
hotel|hotels|Hotel|Hotels|n|Linz
museum|museums|Museum|Museen|n|Linz
library|libraries|Bibliothek|Bibliotheken|f|Linz
hospital|hospitals|Krankenhaus|Krankenhäuser|n|Linz
castle|castles|Schloss|Schlösser|n|Linzr
tower|towers|Turm|Türme|m|Lainzr
barn|barns|Scheune|Scheunen|f|Lin
cave|caves|Höhle|Höhlen|f|Lin
square|squares|Platz|Plätze|m|Labz
office|offices|Büro|Büros|n|Liz
stable|stables|Stall|Ställe|m|Lin
market|markets|Markt|Märkte|m|Lz
bakery|bakeries|Bäckerei|Bäckereien|f|Linz
cinema|cinemas|Kino|Kinos|n|Linz
fence|fences|Zaun|Zäune|m|Ln
tent|tents|Zelt|Zelte|n|Lin
playground|playgrounds|Spielplatz|Spielplätze|m|Laz
zoo|zoos|Zoo|Zoos|m|Liz
farm|farms|Bauernhof|Bauernhöfe|m|Laz
bench|benches|Bank|Bänke|f|Laujn
airport|airports|Flughafen|Flughäfen|m|Lwz
# events
concert|concerts|Konzert|Konzerte|n|E
game|games|Spiel|Spiele|n|E
film|films|Film|Filme|m|E
party|parties|Party|Partys|f|E
journey|journeys|Reise|Reisen|f|E
wedding|weddings|Hochzeit|Hochzeiten|f|E
storm|storms|Sturm|Stürme|m|E
meal|meals|Essen|Essen|n|E
festival|festivals|Fest|Feste|n|E
exam|exams|Prüfung|Prüfungen|f|E
break|breaks|Pause|Pausen|f|E
"""

# English | German | attributive stem if different | order | noun kinds
_ADJECTIVES = """
beautiful|schön||1|PATLVRE
ugly|hässlich||1|PATLV
nice|nett||1|P
friendly|freundlich||1|PA
clever|klug||1|PA
stupid|dumm||1|PA
brave|mutig||1|P
shy|schüchtern||1|PA
lazy|faul||1|PA
funny|lustig||1|PARE
sad|traurig||1|PARE
happy|glücklich||1|PA
angry|wütend||1|PA
rich|reich||1|P
poor|arm||1|PA
famous|berühmt||1|PLR
strange|seltsam||1|PATLRE
dangerous|gefährlich||1|AL
cute|süß||1|A
interesting|interessant||1|PRLE
boring|langweilig||1|PRE
important|wichtig||1|PRE
exciting|spannend||1|RE
quiet|ruhig||1|L
calm|ruhig||1|PA
delicious|lecker||1|FD
expensive|teuer|teur|1|TVFDR
cheap|billig||1|TVFD
proud|stolz||1|P
polite|höflich||1|P
lonely|einsam||1|PAL
big|groß||2|PATLVF
small|klein||2|PATLVF
long|lang||2|TLRE
short|kurz||2|TLRE
huge|riesig||2|ATLV
tiny|winzig||2|ATLV
high|hoch|hoh|2|L
deep|tief||2|L
wide|breit||2|L
narrow|schmal||2|L
fat|dick||2|PA
thick|dick||2|TR
heavy|schwer||2|TV
tired|müde|müd|3|PA
hungry|hungrig||3|PA
thirsty|durstig||3|PA
strong|stark||3|PA
sick|krank||3|PA
wild|wild||3|A
sweet|süß||3|FD
fresh|frisch||3|FD
cold|kalt||3|FD
hot|heiß||3|FD
warm|warm||3|FDT
dry|trocken||3|TL
wet|nass||3|PATL
clean|sauber||3|TLV
dirty|schmutzig||3|PATLV
empty|leer||3|TL
full|voll||3|TLV
soft|weich||3|TF
hard|hart||3|TF
sharp|scharf||3|T
round|rund||3|T
dark|dunkel|dunkl|3|L
bright|hell||3|L
sour|sauer|saur|3|FD
ripe|reif||3|F
fast|schnell||3|AV
slow|langsam||3|AV
light|leicht||3|T
old|alt||4|PATLVR
young|jung||4|PA
new|neu||4|TLVR
modern|modern||4|LV
red|rot||5|TLVF
blue|blau||5|TLV
green|grün||5|TLVF
yellow|gelb||5|TLVF
black|schwarz||5|ATLV
white|weiß||5|ATLV
brown|braun||5|ATLV
grey|grau||5|ATLV
golden|golden||6|T
wooden|hölzern||6|TL
silver|silbern||6|T
"""

# English base | 3rd singular | past | German infinitive ("an~rufen": separable) |
# irregular present "du,er" or "ich,du,er" | Präteritum stem | frames | subject kinds | object
# Frames: i intransitive, m motion (direction), l located (needs a place), a accusative object,
# d dative object, g dative + accusative ("gives the child an apple"), t the same with English
# "to" ("explains the story to the child"), c dass-clause, k dative + dass-clause, w weather;
# b marks verbs that take a beneficiary ("für das Kind").
_VERBS = """
sleep|sleeps|slept|schlafen|schläfst,schläft|schlief|i|PA|
laugh|laughs|laughed|lachen|||i|P|
cry|cries|cried|weinen|||i|P|
work|works|worked|arbeiten|||i|P|
play|plays|played|spielen|||i|PA|
sing|sings|sang|singen||sang|i b|PA|
dance|dances|danced|tanzen|||i|P|
wait|waits|waited|warten|||i|PA|
swim|swims|swam|schwimmen||schwamm|i m|PA|
live|lives|lived|wohnen|||l|PA|
sit|sits|sat|sitzen||saß|i|PA|
stand|stands|stood|stehen||stand|i|PAVL|
lie|lies|lay|liegen||lag|i|PATFRV|
shout|shouts|shouted|schreien||schrie|i|P|
dream|dreams|dreamed|träumen|||i c|P|
smile|smiles|smiled|lächeln|||i|P|
wake up|wakes up|woke up|auf~wachen|||i|PA|
get up|gets up|got up|auf~stehen||stand|i|PA|
fall asleep|falls asleep|fell asleep|ein~schlafen|schläfst,schläft|schlief|i|PA|
arrive|arrives|arrived|an~kommen||kam|i|PV|
go shopping|goes shopping|went shopping|ein~kaufen|||i|P|
travel|travels|travelled|reisen|||m|P|
climb|climbs|climbed|klettern|||m|PA|
fly|flies|flew|fliegen||flog|m|PAV|
go|goes|went|gehen||ging|m|PA|
run|runs|ran|laufen|läufst,läuft|lief|m|PA|
drive|drives|drove|fahren|fährst,fährt|fuhr|m|PV|
jump|jumps|jumped|springen||sprang|m|PA|
come|comes|came|kommen||kam|m|PAV|
walk|walks|walked|spazieren|||m|P|
crawl|crawls|crawled|kriechen||kroch|m|PA|
ride|rides|rode|reiten||ritt|m|P|
hurry|hurries|hurried|eilen|||m|P|
sail|sails|sailed|segeln|||m|P|
hike|hikes|hiked|wandern|||m|P|
see|sees|saw|sehen|siehst,sieht|sah|a c|PA|PATFDRVLE
find|finds|found|finden||fand|a|PA|PATFRV
look for|looks for|looked for|suchen|||a|PA|PATRV
buy|buys|bought|kaufen|||a g b|P|TFDRV
sell|sells|sold|verkaufen|||a g|P|ATFDRV
read|reads|read|lesen|liest,liest|las|a b|P|R
write|writes|wrote|schreiben||schrieb|a g c b|P|R
eat|eats|ate|essen|isst,isst|aß|a|PA|F
drink|drinks|drank|trinken||trank|a|PA|D
carry|carries|carried|tragen|trägst,trägt|trug|a b|PA|PATFDR
hold|holds|held|halten|hältst,hält|hielt|a|P|ATFDR
need|needs|needed|brauchen|||a|PA|PATFDRV
love|loves|loved|lieben|||a|PA|PAFDL
like|likes|liked|mögen|mag,magst,mag|mochte|a|PA|PATFDRVLE
hear|hears|heard|hören|||a c|PA|PAVE
know|knows|knew|kennen||kannte|a|P|PALR
know|knows|knew|wissen|weiß,weißt,weiß|wusste|c|P|
visit|visits|visited|besuchen|||a|P|PL
meet|meets|met|treffen|triffst,trifft|traf|a|PA|PA
ask|asks|asked|fragen|||a|P|P
paint|paints|painted|malen|||a b|P|PATLV
draw|draws|drew|zeichnen|||a b|P|PATLV
build|builds|built|bauen|||a b|P|TLV
open|opens|opened|öffnen|||a|P|o
close|closes|closed|schließen||schloss|a|P|o
wash|washes|washed|waschen|wäschst,wäscht|wusch|a b|P|PATFV
clean|cleans|cleaned|putzen|||a b|P|TLV
lose|loses|lost|verlieren||verlor|a|PA|TR
forget|forgets|forgot|vergessen|vergisst,vergisst|vergaß|a c|P|PTR
take|takes|took|nehmen|nimmst,nimmt|nahm|a|PA|TFDR
bring|brings|brought|bringen||brachte|a g b|PA|TFDR
show|shows|showed|zeigen|||a g|P|ATRVL
give|gives|gave|geben|gibst,gibt|gab|g|P|ATFDR
send|sends|sent|schicken|||a g|P|TR
explain|explains|explained|erklären|||t k|P|R
tell|tells|told|erzählen|||g k|P|R
lend|lends|lent|leihen||lieh|g|P|TRV
promise|promises|promised|versprechen|versprichst,verspricht|versprach|k|P|
cook|cooks|cooked|kochen|||i a b|P|F
bake|bakes|baked|backen||backte|a b|P|F
catch|catches|caught|fangen|fängst,fängt|fing|a|PA|AT
chase|chases|chased|jagen|||a|PA|PA
bite|bites|bit|beißen||biss|a|A|PA
feed|feeds|fed|füttern|||a|P|A
stroke|strokes|stroked|streicheln|||a|P|A
call|calls|called|rufen||rief|a|PA|PA
phone|phones|phoned|an~rufen||rief|a|P|P
invite|invites|invited|ein~laden|lädst,lädt|lud|a|P|P
look at|looks at|looked at|an~sehen|siehst,sieht|sah|a|PA|PATFRVL
pick up|picks up|picked up|ab~holen|||a|P|P
put on|puts on|put on|an~ziehen||zog|a|P|c
understand|understands|understood|verstehen||verstand|a|P|PR
watch|watches|watched|beobachten|||a|PA|PAV
reach|reaches|reached|erreichen|||a|PAV|L
leave|leaves|left|verlassen|verlässt,verlässt|verließ|a|PAV|L
miss|misses|missed|vermissen|||a|PA|PAL
photograph|photographs|photographed|fotografieren|||a|P|PATFLV
repair|repairs|repaired|reparieren|||a b|P|TV
use|uses|used|benutzen|||a|P|TV
order|orders|ordered|bestellen|||a b|P|FD
taste|tastes|tasted|probieren|||a|P|FD
hide|hides|hid|verstecken|||a|PA|TFR
throw|throws|threw|werfen|wirfst,wirft|warf|a|P|T
have|has|had|haben|hast,hat|hatte|a|PA|PATFDRV
pay for|pays for|paid for|bezahlen|||a|P|TFDRV
greet|greets|greeted|begrüßen|||a|P|PA
wake|wakes|woke|wecken|||a|PA|PA
kiss|kisses|kissed|küssen|||a|P|PA
hug|hugs|hugged|umarmen|||a|P|PA
fetch|fetches|fetched|holen|||a b|PA|TFDR
count|counts|counted|zählen|||a|P|PATF
help|helps|helped|helfen|hilfst,hilft|half|d|PA|PA
thank|thanks|thanked|danken|||d|P|P
follow|follows|followed|folgen|||d|PA|PAV
answer|answers|answered|antworten|||d|P|P
belong to|belongs to|belonged to|gehören|||d|ATRVL|P
trust|trusts|trusted|vertrauen|||d|PA|PA
listen to|listens to|listened to|zu~hören|||d|PA|P
congratulate|congratulates|congratulated|gratulieren|||d|P|P
wave to|waves to|waved to|winken|||d|P|P
say|says|said|sagen|||c|P|
believe|believes|believed|glauben|||c|P|
think|thinks|thought|denken||dachte|c|P|
hope|hopes|hoped|hoffen|||c|P|
notice|notices|noticed|bemerken|||a c|P|PATV
fear|fears|feared|fürchten|||c|P|
rain|rains|rained|regnen|||w||
snow|snows|snowed|schneien|||w||
"""

# English | German | kind | tense | English position | may open the sentence (y/n)
_ADVERBS = """
today|heute|t|both|end|y
yesterday|gestern|t|past|end|y
now|jetzt|t|pres|end|y
later|später|t|both|end|y
soon|bald|t|pres|end|y
early|früh|t|both|end|n
late|spät|t|both|end|n
every day|jeden Tag|t|both|end|y
in the morning|morgens|t|both|end|y
in the evening|abends|t|both|end|y
at night|nachts|t|both|end|y
on Sunday|am Sonntag|t|both|end|y
last week|letzte Woche|t|past|end|y
last year|letztes Jahr|t|past|end|y
this morning|heute Morgen|t|both|end|y
then|dann|t|both|pre|y
often|oft|f|both|pre|y
always|immer|f|both|pre|n
sometimes|manchmal|f|both|pre|y
rarely|selten|f|both|pre|n
usually|meistens|f|both|pre|y
already|schon|f|both|pre|n
again|wieder|f|both|end|n
suddenly|plötzlich|m|both|pre|y
finally|endlich|m|both|pre|y
quickly|schnell|m|both|end|n
slowly|langsam|m|both|end|n
quietly|leise|m|both|end|n
loudly|laut|m|both|end|n
carefully|vorsichtig|m|both|end|n
happily|fröhlich|m|both|end|n
alone|allein|m|both|end|n
here|hier|p|both|end|y
there|dort|p|both|end|y
outside|draußen|p|both|end|y
at home|zu Hause|p|both|end|y
"""

# German | case governed | English | use | noun tag
# Two-way prepositions (in, auf, unter, hinter, vor, ...) take the dative for a place and the
# accusative for a direction: they appear once per use.
_PREPOSITIONS = """
in|dat|in|loc|i
auf|dat|on|loc|a
unter|dat|under|loc|u
neben|dat|next to|loc|n
hinter|dat|behind|loc|n
vor|dat|in front of|loc|n
an|dat|at|loc|w
zwischen|dat|between|loc|n
in|acc|into|dir|i
auf|acc|onto|dir|j
unter|acc|under|dir|u
hinter|acc|behind|dir|n
vor|acc|in front of|dir|n
zu|dat|to|dir|z
aus|dat|out of|dir|i
durch|acc|through|dir|d
um|acc|around|dir|r
über|acc|across|dir|b
mit|dat|with|com|
ohne|acc|without|com|
für|acc|for|ben|
von|dat|from|src|
nach|dat|after|time|
vor|dat|before|time|
"""

_NAMES = """
Anna|f
Maria|f
Lena|f
Sophie|f
Laura|f
Julia|f
Sarah|f
Lisa|f
Emma|f
Clara|f
Paula|f
Nina|f
Eva|f
Lea|f
Hanna|f
Marie|f
Greta|f
Ida|f
Mia|f
Frieda|f
Paul|m
Peter|m
Thomas|m
Felix|m
Max|m
Jonas|m
Lukas|m
Leon|m
Tim|m
Jan|m
Ben|m
David|m
Martin|m
Stefan|m
Michael|m
Daniel|m
Simon|m
Tobias|m
Oskar|m
Emil|m
"""

_NUMBERS = """
two|zwei
three|drei
four|vier
five|fünf
six|sechs
seven|sieben
eight|acht
nine|neun
ten|zehn
eleven|elf
twelve|zwölf
twenty|zwanzig
"""


def _noun(f: list[str]) -> Noun:
    en, en_pl, de, de_pl, gender, kind_tags = f[:6]
    oblique = f[6] if len(f) > 6 else de
    kind, rest = kind_tags[0], kind_tags[1:]
    if kind == "P":  # persons: the letter is the English pronoun; every person takes "zu"
        pron = {"m": "he", "f": "she"}.get(rest, "it")
        return Noun(en, en_pl, de, de_pl, gender, kind, "z", oblique, pron)
    return Noun(en, en_pl, de, de_pl, gender, kind, rest, oblique, "it")


def _verb(f: list[str]) -> Verb:
    en, en3, en_past, de, pres, past, frames, subj, obj = f
    prefix, _, base = de.rpartition("~")
    return Verb(en, en3, en_past, base, prefix, pres, past, tuple(frames.split()), subj, obj)


NOUNS = tuple(_noun(f) for f in _rows(_NOUNS))
ADJECTIVES = tuple(Adjective(f[0], f[1], f[2] or f[1], int(f[3]), f[4]) for f in _rows(_ADJECTIVES))
VERBS = tuple(_verb(f) for f in _rows(_VERBS))
ADVERBS = tuple(Adverb(f[0], f[1], f[2], f[3], f[4], f[5] == "y") for f in _rows(_ADVERBS))
PREPOSITIONS = tuple(Prep(f[0], f[1], f[2], f[3], f[4]) for f in _rows(_PREPOSITIONS))
NAMES = tuple(Name(f[0], f[1]) for f in _rows(_NAMES))
NUMBERS = tuple(Number(f[0], f[1]) for f in _rows(_NUMBERS))

# The copula is not drawn like other verbs: clauses with "sein" have their own frames.
BE = Verb("be", "is", "was", "sein", "", "", "", ("cop", "copl"), "PATFDRVLE", "")

NOUN = {n.de: n for n in NOUNS}
VERB = {v.prefix + v.de: v for v in VERBS}
ADJECTIVE = {a.en: a for a in ADJECTIVES}
ADVERB = {a.en: a for a in ADVERBS}


def lexicon_size() -> int:
    """Entries written for the corpus: nouns, adjectives, verbs, adverbs, prepositions, names
    and number words, each counted once."""
    prepositions = len({p.de for p in PREPOSITIONS})  # a two-way preposition counts once
    lists = (NOUNS, ADJECTIVES, VERBS, ADVERBS, NAMES, NUMBERS)
    return prepositions + sum(len(entries) for entries in lists)
